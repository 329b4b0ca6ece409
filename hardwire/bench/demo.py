"""`make demo`: compile and check every program in programs/, print sizes, write bench/results/sizes.json."""
from __future__ import annotations

import json
from pathlib import Path

# Looped programs are checked on fewer samples and steps (the interpreter is the slow side), and the
# SUBLEQ computer at a smaller memory; tests/ check them step by step at their shipped sizes.
LOOPED = {"subleq": (["mem=32", "bits=8"], 20), "turing_loop": ([], 20), "parity_cot": ([], 100)}


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
    cols = ["program", "layers", "heads", "d_model", "d_mlp", "params", "nonzero_params", "samples", "mismatches"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    out = Path("bench/results/sizes.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = {r["program"]: {c: r[c] for c in cols[1:7]} for r in rows}
    out.write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    raise SystemExit(1 if any(r["mismatches"] for r in rows) else 0)
