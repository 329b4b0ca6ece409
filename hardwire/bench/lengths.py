"""`hardwire bench lengths`: how far each construction stays exact (bench/results/lengths.json), by `hardwire sweep`."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

from hardwire.bench.common import write_json
from hardwire.compiler.core.errors import HardwireError

LENGTH_PLAN = {"parity_count": ([8, 64, 512, 2048, 4096], 5), "parity_cc": ([8, 64, 512, 4096, 16384], 3),
               "parity_cot": ([8, 64, 512, 4096, 16384], 3), "add_lsb": ([8, 64, 512, 1000, 4000], 5),
               "add_msb": ([8, 64, 512, 1000, 2000], 3), "add_cot": ([8, 64, 512, 1000, 4000], 3)}


# Lengths verified beyond the sweep by a slow test (`pytest -m slow`), which lengths.json records beside the sweep
# so that it says the longest length known exact and where that was checked (tests/test_bench.py holds them equal).
LONGER_TESTS = {"parity_cot": [{"length": 100_000, "dtype": "float32", "inputs": 1,
                                "test": "tests/test_parity.py::test_very_long_strings[100000]"}]}


def with_longer_tests(construction: dict) -> dict:
    """A lengths.json entry with `verified_by_tests` (LONGER_TESTS) and `longest_verified` per dtype: the longest
    of the sweep's exact lengths and those tests' lengths."""
    tests = LONGER_TESTS.get(construction["program"], [])
    longest = {dt: max([n] + [t["length"] for t in tests if t["dtype"] == dt])
               for dt, n in construction["max_exact_length"].items()}
    return {**construction, "verified_by_tests": tests, "longest_verified": longest}


def bench_lengths(out_dir: str = "bench/results", only: list[str] | None = None) -> dict:
    """Issue 5's table: per construction, the longest swept length that stays exact in each dtype.

    With `only`, just those constructions are swept again; the others keep their recorded entries.
    """
    from hardwire.bench.sweep import sweep
    unknown = sorted(set(only or []) - set(LENGTH_PLAN))
    if unknown:
        raise HardwireError(f"no length plan for {unknown[0]!r}; known: {', '.join(LENGTH_PLAN)}")
    path = Path(out_dir) / "lengths.json"
    old = {c["program"]: c for c in json.loads(path.read_text())["constructions"]} if only and path.exists() else {}
    constructions = []
    for name, (lengths, samples) in LENGTH_PLAN.items():
        if only and name not in only:
            if name in old:
                constructions.append(with_longer_tests(old[name]))
            continue
        runs = {dt: sweep(f"programs/{name}.hw", lengths, dt, samples) for dt in ("float32", "float64")}
        last = runs["float32"]["rows"][-1]
        constructions.append(with_longer_tests({
            "program": name, "lengths_swept": lengths,
            "max_exact_length": {dt: r["max_exact_length"] for dt, r in runs.items()},
            "layers": last["layers"], "heads": last["heads"], "d_model": last["d_model"], "d_mlp": last["d_mlp"],
            "at_length": lengths[-1], "rows": {dt: r["rows"] for dt, r in runs.items()}}))
    result = {"date": datetime.date.today().isoformat(), "constructions": constructions,
              "note": "max_exact_length is the longest swept length with 0 mismatches (addition: digits per "
                      "operand); a construction exact at every swept length may hold further. longest_verified "
                      "adds the lengths a slow test checks (verified_by_tests)"}
    write_json(path, result)
    return result
