"""`make demo`: compile and check every program in programs/, print sizes, write bench/results/sizes.json."""
from __future__ import annotations

import json
from pathlib import Path

# Looped programs are checked on fewer samples and steps (the interpreter is the slow side), and the
# SUBLEQ computer at a smaller memory; tests/ check them step by step at their shipped sizes.
LOOPED = {"subleq": (["mem=32", "bits=8"], 20), "turing_loop": ([], 20), "parity_cot": ([], 100)}


SIZE_COLS = ["layers", "heads", "d_model", "d_mlp", "params", "nonzero_params"]  # sizes.json's, per program


def sizes(root: Path = Path("."), names: list[str] | None = None) -> dict[str, dict]:
    """What `make demo` writes to bench/results/sizes.json, compiled only (no check): every program at the
    demo's params (tests/test_results.py compares it with the committed file)."""
    from hardwire.cli.args import params_arg
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    out = {}
    for path in sorted((root / "programs").glob("*.hw")):
        if names is None or path.stem in names:
            summary = compile_program(check_file(str(path), params_arg(LOOPED.get(path.stem, ([], 0))[0]))).summary()
            out[path.stem] = {c: summary[c] for c in SIZE_COLS}
    return out


def run(samples: int, names: list[str] | None = None) -> list[dict]:
    """`hardwire check` on every program (or those named), parsed by the CLI's own parser so that its defaults
    stay the CLI's."""
    from hardwire.cli.check import cmd_check
    from hardwire.cli.main import parser
    rows = []
    for path in sorted(Path("programs").glob("*.hw")):
        if names is not None and path.stem not in names:
            continue
        params, n = LOOPED.get(path.stem, ([], samples))
        args = ["check", str(path), "--samples", str(n), "--device", "cpu", "--max-steps", "100"]
        rows.append(cmd_check(parser().parse_args(args + [x for p in params for x in ("--param", p)])))
    return rows


if __name__ == "__main__":
    rows = run(300)
    cols = ["program", *SIZE_COLS, "samples", "mismatches"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    out = Path("bench/results/sizes.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({r["program"]: {c: r[c] for c in SIZE_COLS} for r in rows}, indent=2,
                              sort_keys=True) + "\n")
    print(f"wrote {out}")
    raise SystemExit(1 if any(r["mismatches"] for r in rows) else 0)
