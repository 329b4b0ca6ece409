"""`hardwire tm SPEC`: run a Turing machine on its compiled transformer and compare with the simulator."""
from __future__ import annotations

import time

from hardwire.compiler.core.errors import HardwireError
from hardwire.machines.turing import tm as tmlib

MAX_CELLS = 1 << 14


def cmd_tm(a) -> dict:
    import torch

    from hardwire.cli import long_run
    from hardwire.runtime.loop import run_loop
    from hardwire.runtime.model import load
    long_run.check_paths(a)
    machine = tmlib.parse_spec(a.spec)
    tape_in = tmlib.parse_tape(a.input, machine.symbols)
    if a.mode == "cot":   # refused before the simulator runs the steps (a billion of them would take an hour)
        from hardwire.machines.turing.cot import MAX_WORD_TOKENS
        most = max(len(tape_in), 1) + a.max_steps + 1
        if getattr(a, "encoding", "words") == "words" and most > MAX_WORD_TOKENS:
            raise HardwireError(f"a chain of thought of up to {most} tokens (--max-steps {a.max_steps}) is more "
                                f"than {MAX_WORD_TOKENS}; lower --max-steps (long runs: --mode loop)")
    t0 = time.perf_counter()
    ref = tmlib.simulate(machine, tape_in, a.max_steps)
    ref_s = time.perf_counter() - t0
    if a.mode == "cot":
        from hardwire.machines.turing.cot import run_cot
        return run_cot(a, machine, tape_in, ref, ref_s)
    cells, offset = tmlib.window_for(machine, tape_in, ref, a.tape)
    if cells > MAX_CELLS:
        raise HardwireError(f"the run visits {cells} cells; at most {MAX_CELLS} fit a compiled tape "
                            "(lower --max-steps)")
    from hardwire import checkpoint
    from hardwire.cache import cached_generated_model
    weights = cached_generated_model("turing_loop", tmlib.loop_program(machine, cells, offset))
    dtype = a.dtype or "float32"
    model = load(weights, a.device, torch.float64 if dtype == "float64" else torch.float32)
    long_run.fits(model, "running the looped machine", "lower --max-steps or --tape")
    tokens = [0] * cells
    for i, s in enumerate(tape_in):
        tokens[i + offset] = s
    what = f"tm {machine.spec} --mode loop ({cells} cells, {dtype})"
    ident = checkpoint.identity(kind="tm loop", model=long_run.model_key(weights), tokens=tokens, dtype=dtype)
    long, saver = long_run.loop_long_run(a, what, ident, ref.steps, "steps")
    t1 = time.perf_counter()
    from hardwire.runtime.loop import use_fast
    path = "fast" if not a.dense and use_fast(model, None, [tokens]) else "dense"
    got = run_loop(model, [tokens], max_steps=a.max_steps, progress=long_run.progress_mode(a),
                   fast=path == "fast", long=long)[0]
    run_s = time.perf_counter() - t1
    ran = got.steps - long.done
    tape = got.outputs["final_tape"]
    head = got.outputs["final_head"][0] - offset
    lo, hi = -offset, cells - offset - 1
    same = (got.steps == ref.steps and got.halted == ref.halted and tape == ref.window(lo, hi)
            and head == ref.head)
    used = [i for i, v in enumerate(tape) if v]
    shown = "".join(map(str, tape[used[0]:used[-1] + 1])) if used else ""
    return {"spec": machine.spec, "mode": "loop", "steps": got.steps, "halted": got.halted,
            "ones": sum(1 for v in tape if v), "tape": shown, "head": head, "matches_reference": same,
            "cells": cells, "path": path, "run_s": round(run_s, 3),
            "steps_per_s": round(ran / max(run_s, 1e-9), 1),
            "reference_s": round(ref_s, 3), **long_run.report(a, long.done, saver)}


def render_tm(info: dict) -> str:
    status = "halted" if info["halted"] else "did not halt (step limit)"
    return (f"{info['spec']} ({info['mode']}): {info['steps']} steps, {status}, {info['ones']} non-blank cells\n"
            f"tape: {info['tape']}\nmatches the simulator: {info['matches_reference']}")


def add_parser(sub) -> None:
    from hardwire.cli.args import positive_int
    t = sub.add_parser("tm", help="run a Turing machine (bbchallenge format) on its compiled transformer")
    t.add_argument("spec", help="e.g. 1RB1LB_1LA1RZ (one group per state; ---: undefined; Z halts)")
    t.add_argument("--input", default="", help="the input tape from cell 0, e.g. 0110")
    t.add_argument("--mode", choices=["loop", "cot"], default="loop",
                   help="loop: one pass per step; cot: one generated token per step")
    t.add_argument("--max-steps", type=positive_int, default=100_000)
    t.add_argument("--tape", type=positive_int, default=None,
                   help="tape cells in the model (default: what the run needs)")
    t.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="default: float32, except a chain of thought float32 cannot hold exactly (then float64)")
    t.add_argument("--encoding", choices=["words", "cells"], default="words",
                   help="cot mode: words (a step token carries the head's cell as bits; the default) or cells (a "
                        "token per cell: one layer, the vocabulary grows with the tape)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    t.add_argument("--dense", action="store_true",
                   help="run the plain dense forward pass (the reference); by default a loop takes the fast paths "
                        "of runtime/fast.py where they are expected to be quicker, and a chain of thought decodes "
                        "its proven heads as lookups (runtime/index_attention.py)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    from hardwire.cli.long_run import add_long_run_options
    add_long_run_options(t)
