"""`hardwire tm --mode cot`: the machine's steps generated one token each, by a one-layer transformer."""
from __future__ import annotations

import time

from hardwire.compiler.core.errors import HardwireError
from hardwire.machines.turing import tm as tmlib

MAX_TOKENS = 65_536   # the float32 argument of proofs/turing_cot.md holds to about 78,000 tokens


def parse_step(tok: str) -> tuple[str, int, int, int]:
    """'B1R-3' -> (state B, wrote 1, moved +1, head now at -3)."""
    return tok[0], int(tok[1]), 1 if tok[2] == "R" else -1, int(tok[3:])


def replay(prompt: list[int], generated: list[str]) -> tuple[dict[int, int], int, int]:
    """The tape, head and step count that the generated tokens record."""
    tape = {c: s for c, s in enumerate(prompt) if s}
    head, steps = 0, 0
    for tok in generated:
        if tok == "halt":
            break
        _, write, move, head = parse_step(tok)
        cell = head - move
        if write:
            tape[cell] = write
        else:
            tape.pop(cell, None)
        steps += 1
    return tape, head, steps


def run_cot(a, machine: tmlib.Machine, tape_in: list[int], ref: tmlib.Run, ref_s: float) -> dict:
    import torch

    from hardwire.runtime.generate import generate
    from hardwire.runtime.model import load
    prompt = tape_in or [0]
    cells, offset = tmlib.window_for(machine, prompt, ref, a.tape)
    lo, hi = -offset, cells - offset - 1
    max_len = tmlib.cot_length(len(prompt), ref)  # ref ran at most --max-steps steps
    if max_len > MAX_TOKENS:
        raise HardwireError(f"a chain of thought of {max_len} tokens is more than {MAX_TOKENS}; lower --max-steps "
                            "(long runs: --mode loop)")
    source = tmlib.cot_program(machine, len(prompt), lo, hi, max_len)
    from hardwire import checkpoint
    from hardwire.cache import cached_generated_model
    from hardwire.cli import long_run
    from hardwire.runtime.loop_state import LongRun
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    weights = cached_generated_model("turing_cot", source)
    model = load(weights, a.device, dtype)
    long_run.fits(model, "the chain of thought", "lower --max-steps")
    what = f"tm {machine.spec} --mode cot ({cells} cells, {max_len} tokens)"
    ident = checkpoint.identity(kind="tm cot", model=long_run.model_key(weights), prompt=prompt)
    done = long_run.cot_resume(a, what, ident)
    saver = checkpoint.Saver(getattr(a, "checkpoint", None), what, ident)
    long = LongRun(save=(lambda g: saver.write({"tokens": done + g})) if saver.path else None,
                   every_s=getattr(a, "checkpoint_every", 60), total=max_len - len(prompt), desc="tokens",
                   done=len(done))
    t1 = time.perf_counter()
    gen = done + generate(model, [prompt + done], progress=long_run.progress_mode(a), long=long)[0]
    run_s = time.perf_counter() - t1
    stop = set(model.config["generate"]["stop"])
    halted = bool(gen) and gen[-1] in stop
    tape, head, steps = replay(prompt, gen)
    same = (steps == ref.steps and halted == ref.halted and head == ref.head
            and {c: v for c, v in tape.items() if v} == {c: v for c, v in ref.tape.items() if v})
    used = sorted(tape)
    shown = "".join(str(tape.get(c, 0)) for c in range(used[0], used[-1] + 1)) if used else ""
    return {"spec": machine.spec, "mode": "cot", "steps": steps, "halted": halted, "ones": len(tape),
            "tape": shown, "head": head, "matches_reference": same, "tokens": len(gen),
            "layers": model.config["n_layers"], "run_s": round(run_s, 3), "reference_s": round(ref_s, 3),
            **long_run.report(a, len(done), saver)}
