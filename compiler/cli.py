"""The `hardwire` command line: compile, run, check, subleq.

Bad input: one line on stderr, exit 2. check: exit 1 on mismatches. A loop that reaches its step limit
without halting: exit 3.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time

from .errors import HardwireError


def params_arg(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items or []:
        name, sep, val = item.partition("=")
        if not sep or not val.lstrip("-").isdigit():
            raise HardwireError(f"--param expects name=integer, got {item!r}")
        out[name] = int(val)
    return out


def parse_input(text: str, vocab: list, words: bool = False) -> list:
    """Whitespace-separated tokens; integers where the vocabulary holds integers (all, for `vocab word`)."""
    out = []
    for word in text.split():
        if words:
            try:
                out.append(int(word))
            except ValueError:
                raise HardwireError(f"{word!r} is not an integer, and this program reads words") from None
            continue
        try:
            v = int(word)
            out.append(v if v in vocab else word)
        except ValueError:
            out.append(word)
    return out


def show(v) -> str:
    return "none" if v is None else str(v)


def cmd_compile(a) -> dict:
    from .artifact import compile_program
    from .elaborate import check_file
    prog = check_file(a.program, params_arg(a.param))
    model = compile_program(prog)
    model.save(a.output)
    info = {**model.summary(), "compile_s": model.compile_s, "output": a.output}
    return info


def cmd_run(a) -> dict:
    from runtime.model import load
    model = load(a.model, a.device)
    tokens = parse_input(a.input, model.config["vocab"], bool(model.config.get("word_vocab")))
    if "generate" in model.config:
        from runtime.generate import generate
        return {"input": tokens, "generated": generate(model, [tokens])[0]}
    if "loop" in model.config:
        from runtime.loop import run_loop, trace_writer
        with trace_writer(a.trace) as on_step:
            r = run_loop(model, [tokens], max_steps=a.max_steps, progress=not a.json, on_step=on_step)[0]
        return {"input": tokens, "outputs": r.outputs, "steps": r.steps, "halted": r.halted, "emitted": r.emitted}
    result = model.run([tokens])[0]
    return {"input": tokens, "outputs": result}


def sample_input(rng: random.Random, vocab: list, max_len: int, distinct: bool, word_bits: int = 0) -> list:
    if word_bits:
        half = 1 << (word_bits - 1)
        return [rng.randint(-half, half - 1) for _ in range(rng.randint(1, max_len))]
    n = rng.randint(1, min(max_len, len(vocab)) if distinct else max_len)
    return rng.sample(vocab, n) if distinct else [rng.choice(vocab) for _ in range(n)]


def cmd_check(a) -> dict:
    from runtime.model import from_compiled, parse_value

    from .artifact import compile_program, to_json
    from .elaborate import check_file
    from .interpret import execute, run
    prog = check_file(a.program, params_arg(a.param))
    compiled = compile_program(prog)
    import torch
    model = from_compiled(compiled, a.device, torch.float64 if a.dtype == "float64" else torch.float32)
    rng = random.Random(a.seed)
    bits = prog.word_bits if prog.word_vocab else 0
    inputs = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, bits) for _ in range(a.samples)]
    t0 = time.perf_counter()
    got = []
    for i in range(0, len(inputs), 256):
        if prog.loop is not None:
            from runtime.loop import run_loop
            got += [{**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
                    for r in run_loop(model, inputs[i:i + 256], max_steps=a.max_steps)]
        else:
            got += model.run(inputs[i:i + 256])
    mismatches = []
    for x, g in zip(inputs, got):
        if prog.loop is not None:
            r = execute(prog, x, a.max_steps)
            want = {**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
        else:
            want = run(prog, x)
        g = {k: [parse_value(v) for v in vs] for k, vs in g.items()}
        if g != want:
            mismatches.append({"input": x, "model": {k: [to_json(v) for v in vs] for k, vs in g.items()},
                               "interpreter": {k: [to_json(v) for v in vs] for k, vs in want.items()}})
    return {**compiled.summary(), "samples": len(inputs), "mismatches": len(mismatches), "dtype": a.dtype,
            "examples": mismatches[:5], "run_s": round(time.perf_counter() - t0, 3)}


def render(cmd: str, info: dict) -> str:
    if cmd == "bench":
        from .bench import table, tm_table
        if "constructions" in info:
            return "\n".join(f"{c['program']}: exact through {c['max_exact_length']} (swept {c['lengths_swept']}); "
                             f"{c['layers']} layers, d_model {c['d_model']}, d_mlp {c['d_mlp']} at {c['at_length']}"
                             for c in info["constructions"])
        return tm_table(info) if "throughput_machine" in info else table(info)
    if cmd == "sweep":
        from .sweep import render as render_sweep
        return render_sweep(info)
    if cmd == "tm":
        from .tm_cmd import render_tm
        return render_tm(info)
    if cmd == "subleq":
        from .subleq_cmd import render_subleq
        return render_subleq(info)
    if cmd == "run":
        if "generated" in info:
            return "generated: " + " ".join(show(v) for v in info["generated"])
        lines = [f"{k}: {' '.join(show(v) for v in vs)}" for k, vs in info["outputs"].items()]
        if "steps" in info:
            lines.append(f"emitted: {' '.join(map(str, info['emitted']))}")
            lines.append(f"steps: {info['steps']} ({'halted' if info['halted'] else 'step limit reached'})")
        return "\n".join(lines)
    lines = [f"{k}: {v}" for k, v in info.items() if k != "examples"]
    for ex in info.get("examples", []):
        lines.append(f"mismatch on {ex['input']}: model {ex['model']} interpreter {ex['interpreter']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hardwire", description="Compile small programs into exact transformer weights.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile PROG.hw into a safetensors weight file")
    c.add_argument("program")
    c.add_argument("-o", "--output", required=True)
    r = sub.add_parser("run", help="run a weight file on one input")
    r.add_argument("model")
    r.add_argument("--input", required=True, help='whitespace-separated tokens, e.g. "3 1 2"')
    k = sub.add_parser("check", help="compile, then compare model and interpreter on random inputs")
    k.add_argument("program")
    k.add_argument("--samples", type=int, default=200)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    for p in (c, k):
        p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a compile-time param")
    for p in (c, r, k):
        p.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--trace", default=None, metavar="FILE.jsonl",
                   help="for a loop: write every register after every pass, one JSON line per step")
    for p in (r, k):
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
        p.add_argument("--max-steps", type=int, default=10_000, help="step limit for a program with a loop")
    from . import bench, subleq_cmd, sweep, tm_cmd
    subleq_cmd.add_parser(sub)
    tm_cmd.add_parser(sub)
    bench.add_parser(sub)
    sweep.add_parser(sub)
    a = ap.parse_args(argv)
    try:
        info = {"compile": cmd_compile, "run": cmd_run, "check": cmd_check, "subleq": subleq_cmd.cmd_subleq,
                "tm": tm_cmd.cmd_tm, "bench": bench.cmd_bench, "sweep": sweep.cmd_sweep}[a.cmd](a)
    except HardwireError as e:
        print(f"hardwire: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, default=str) if a.json else render(a.cmd, info))
    if a.cmd == "check" and info["mismatches"] or a.cmd in ("subleq", "tm") and not info["matches_reference"]:
        return 1
    return 3 if info.get("halted") is False else 0


if __name__ == "__main__":
    sys.exit(main())
