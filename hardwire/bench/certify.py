"""`hardwire bench certify [--quick]` (or `python3 -m hardwire.bench.certify [--default-sizes] [NAME ...]`): how
long `hardwire certify FILE` takes per program (--quick: the sizes CI certifies).

Each program in programs/ is compiled to a weight file, then certified the way the command does it (read the
file, compile its embedded program again, compare the header and every block with it, then the error analysis),
timed in parts. Sizes: the ones CI certifies (tests/test_certify.py: subleq at 32 words of 8 bits, add_cot at
n = 4), or every default with --default-sizes. Writes bench/results/certify.json; nothing asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_SIZES = {"subleq": {"mem": 32, "bits": 8}, "add_cot": {"n": 4}}


def time_one(name: str, params: dict | None) -> dict:
    """Compile `name` to a file, then certify it as `hardwire certify FILE` does, timing each part."""
    from hardwire.certify.certifier import certify
    from hardwire.certify.program import file_model
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    prog = check_file(str(ROOT / "programs" / f"{name}.hw"), params)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.safetensors")
        compile_program(prog).save(path)
        t0 = time.perf_counter()
        model, claim, mismatch = file_model(path, None, None)  # load, recompile, compare the header
        t1 = time.perf_counter()
        cert = certify(model)  # compare every block with the program's, then bound the errors
        t2 = time.perf_counter()
    return {"params": prog.params, "max_len": prog.max_len, "certified": cert.ok, "length": cert.length,
            "header_mismatch": mismatch, "load_and_recompile_s": round(t1 - t0, 3),
            "certify_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python3 -m hardwire.bench.certify")
    ap.add_argument("names", nargs="*", help="programs (default: every one in programs/)")
    ap.add_argument("--default-sizes", action="store_true", help="subleq and add_cot at their defaults too")
    ap.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / "certify.json"))
    a = ap.parse_args(argv)
    names = a.names or sorted(p.stem for p in (ROOT / "programs").glob("*.hw"))
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cpus ({platform.python_version()})",
           "sizes": "defaults" if a.default_sizes else "as CI certifies them (tests/test_certify.py SMALL)",
           "programs": {}}
    for name in names:
        out["programs"][name] = time_one(name, None if a.default_sizes else CI_SIZES.get(name))
        print(name, json.dumps(out["programs"][name]), file=sys.stderr, flush=True)
    Path(a.output).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


if __name__ == "__main__":
    main()
