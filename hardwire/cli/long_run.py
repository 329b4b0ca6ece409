"""The long-run options of `hardwire tm` and `hardwire subleq`: --progress, --checkpoint, --resume, and the memory
check before a run starts (shared by both commands; see hardwire/checkpoint.py for the file)."""
from __future__ import annotations

import sys
from pathlib import Path

from hardwire import checkpoint
from hardwire.compiler.core.errors import HardwireError


def add_long_run_options(p) -> None:
    """--progress, --checkpoint FILE, --checkpoint-every SECONDS, --resume FILE."""
    p.add_argument("--progress", action="store_true",
                   help="a progress line on stderr (steps, rate, ETA) even when stderr is not a terminal")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="save the run's state to FILE every --checkpoint-every seconds (and when the step limit "
                        "stops it), atomically; --resume FILE continues from it")
    p.add_argument("--checkpoint-every", type=seconds, default=60.0, metavar="SECONDS",
                   help="seconds between two checkpoints (default 60; 0: after every chunk of steps)")
    p.add_argument("--resume", default=None, metavar="FILE",
                   help="continue the run saved in FILE by --checkpoint (refused if it was made for another "
                        "model, machine, input or dtype)")


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, at least 0."""
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds (0 or more), got {text!r}")
    return value


def progress_mode(a) -> bool | str:
    """"now" with --progress, True (shown after 2 s) when stderr is a terminal, else False."""
    if getattr(a, "progress", False):
        return "now"
    return sys.stderr.isatty()


def check_paths(a) -> None:
    """Refuse a --checkpoint path that cannot be written, before any work."""
    from hardwire.cli.args import check_output
    if getattr(a, "checkpoint", None) is not None:
        check_output(a.checkpoint, "--checkpoint")


def model_key(weights: str | Path) -> str:
    """What names a model in a checkpoint's identity: its cached weight file's name, which holds a hash of the
    program, its params and the compiler."""
    return Path(weights).name


def fits(model, what: str, fix: str) -> None:
    """Refuse, with the estimate, a run whose one input does not fit in the memory it may use."""
    from hardwire.runtime.memory import rows_that_fit
    rows_that_fit(model, 1, what=what, fix=fix)


def loop_long_run(a, what: str, ident: str, total: int, desc: str):
    """The runtime LongRun of a loop run (None when no option asks for one) and the saver behind it."""
    from hardwire.runtime.loop_state import LongRun, LoopState
    saver = checkpoint.Saver(getattr(a, "checkpoint", None), what, ident)
    resume = None
    if getattr(a, "resume", None) is not None:
        ck = checkpoint.load(a.resume, what, ident)
        if ck.residual is None:
            raise HardwireError(f"--resume {a.resume}: the checkpoint holds no loop state")
        steps = int(ck.state.get("steps", 0))
        if steps > a.max_steps:
            raise HardwireError(f"--resume {a.resume}: the checkpoint is at step {steps}, past --max-steps "
                                f"{a.max_steps}; raise --max-steps")
        resume = LoopState(steps, ck.residual, [int(v) for v in ck.state.get("emitted", [])])

    def save(st) -> None:
        saver.write({"steps": st.steps, "emitted": st.emitted}, st.residual)
    return LongRun(resume=resume, save=save if saver.path else None, every_s=getattr(a, "checkpoint_every", 60),
                   total=total,
                   desc=desc, done=resume.steps if resume else 0), saver


def cot_resume(a, what: str, ident: str):
    """The tokens a chain-of-thought checkpoint had generated ([] without --resume), or the native index decoder's
    state (a runtime DecodeState) where it wrote the checkpoint."""
    if getattr(a, "resume", None) is None:
        return []
    ck = checkpoint.load(a.resume, what, ident)
    if {"tokens", "x", "state", "have"} <= ck.tensors.keys():
        from hardwire.runtime.loop_state import DecodeState
        t = {k: v.numpy() for k, v in ck.tensors.items()}
        return DecodeState(t["tokens"], t["x"], t["state"], t["have"], int(ck.state["pos"]), bool(ck.state["done"]))
    if "tokens" not in ck.state:
        raise HardwireError(f"--resume {a.resume}: the checkpoint holds no generated tokens")
    return list(ck.state["tokens"])


def report(a, resumed_at: int, saver: checkpoint.Saver | None) -> dict:
    """The JSON keys a long run adds: where it resumed (with --resume) and the checkpoints written."""
    out: dict = {}
    if getattr(a, "resume", None) is not None:
        out["resumed_at"] = resumed_at
    if saver is not None and getattr(a, "checkpoint", None) is not None:
        out["checkpoints"] = saver.writes
    return out
