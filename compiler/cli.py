"""The `hardwire` command line: compile, run, check. Bad input: one line on stderr, exit 2."""
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


def parse_input(text: str, vocab: list) -> list:
    """Whitespace-separated tokens; integers where the vocabulary holds integers."""
    out = []
    for word in text.split():
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
    tokens = parse_input(a.input, model.config["vocab"])
    result = model.run([tokens])[0]
    return {"input": tokens, "outputs": result}


def sample_input(rng: random.Random, vocab: list, max_len: int, distinct: bool) -> list:
    n = rng.randint(1, min(max_len, len(vocab)) if distinct else max_len)
    return rng.sample(vocab, n) if distinct else [rng.choice(vocab) for _ in range(n)]


def cmd_check(a) -> dict:
    from runtime.model import from_compiled, parse_value

    from .artifact import compile_program, to_json
    from .elaborate import check_file
    from .interpret import run
    prog = check_file(a.program, params_arg(a.param))
    compiled = compile_program(prog)
    import torch
    model = from_compiled(compiled, a.device, torch.float64 if a.dtype == "float64" else torch.float32)
    rng = random.Random(a.seed)
    inputs = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct) for _ in range(a.samples)]
    t0 = time.perf_counter()
    got = []
    for i in range(0, len(inputs), 256):
        got += model.run(inputs[i:i + 256])
    mismatches = []
    for x, g in zip(inputs, got):
        want = run(prog, x)
        g = {k: [parse_value(v) for v in vs] for k, vs in g.items()}
        if g != want:
            mismatches.append({"input": x, "model": {k: [to_json(v) for v in vs] for k, vs in g.items()},
                               "interpreter": {k: [to_json(v) for v in vs] for k, vs in want.items()}})
    return {**compiled.summary(), "samples": len(inputs), "mismatches": len(mismatches), "dtype": a.dtype,
            "examples": mismatches[:5], "run_s": round(time.perf_counter() - t0, 3)}


def render(cmd: str, info: dict) -> str:
    if cmd == "run":
        return "\n".join(f"{k}: {' '.join(show(v) for v in vs)}" for k, vs in info["outputs"].items())
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
    for p in (r, k):
        p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    a = ap.parse_args(argv)
    try:
        info = {"compile": cmd_compile, "run": cmd_run, "check": cmd_check}[a.cmd](a)
    except HardwireError as e:
        print(f"hardwire: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, default=str) if a.json else render(a.cmd, info))
    return 1 if a.cmd == "check" and info["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
