"""`hardwire check PROG.hw`: compile, then compare the model with the interpreter on random inputs (exit 1 on a
mismatch)."""
from __future__ import annotations

import sys

from hardwire.cli.args import (
    add_json_option,
    add_program_options,
    add_run_options,
    load_program,
    positive_int,
    show,
)
from hardwire.harness import compare


def add_parser(sub) -> None:
    k = sub.add_parser("check", help="compile, then compare model and interpreter on random inputs")
    k.add_argument("program")
    k.add_argument("--samples", type=positive_int, default=200)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="default: float32, or float64 (with a note) for a model float32 cannot hold exactly")
    add_program_options(k)
    add_json_option(k)
    add_run_options(k)


def cmd_check(a) -> dict:
    from hardwire.compiler.pipeline import compile_program
    from hardwire.runtime.model import from_compiled
    prog = load_program(a.program, a.param, a.strict)
    compiled = compile_program(prog, a.max_params)
    import torch

    from hardwire.compiler.precision import choose_dtype, fit
    dtype, note = choose_dtype(prog.name, fit(compiled.tensors, compiled.config), a.dtype)
    if note:
        print(f"hardwire: {note}", file=sys.stderr)
    model = from_compiled(compiled, a.device, torch.float64 if dtype == "float64" else torch.float32)
    r = compare(prog, model, a.samples, a.seed, a.max_steps)
    return {**compiled.summary(), "samples": r["samples"], "mismatches": r["mismatches"], "dtype": dtype,
            "examples": r["examples"], "run_s": r["run_s"]}


def render(info: dict) -> str:
    lines = [f"{k}: {v}" for k, v in info.items() if k != "examples"]
    for ex in info.get("examples", []):
        model, interpreter = ({k: [show(v) for v in vs] for k, vs in ex[side].items()}  # 1/2, not Fraction(1, 2)
                              for side in ("model", "interpreter"))
        lines.append(f"mismatch on {ex['input']}: model {model} interpreter {interpreter}")
    return "\n".join(lines)
