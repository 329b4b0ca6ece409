"""bench/results/README.md: the tables of whichever benchmarks have results in a folder."""
from __future__ import annotations

import json
from pathlib import Path

from hardwire.bench.decode import decode_table
from hardwire.bench.programs import programs_table
from hardwire.bench.subleq import table
from hardwire.bench.tm import tm_table


def write_markdown(out_dir: Path, quick: bool) -> None:
    """README.md (README_quick.md) in out_dir: the tables of whichever benchmarks have results there."""
    suffix = "_quick" if quick else ""
    parts = ["# Benchmark results", "", "Written by `hardwire bench programs|subleq|tm|decode` "
             "(hardwire/bench/programs.py, subleq.py, tm.py, decode.py); the JSON files beside this one hold every "
             "figure. Rates are per second, "
             "all machines or inputs of a batch together; *fast* is the fast paths (runtime/fast.py), *dense* the "
             "plain forward pass (runtime/model.py)."]
    for name, title, render in (("programs", "Programs", programs_table), ("subleq", "SUBLEQ", table),
                                ("tm", "Turing machines", tm_table), ("decode", "Decoding", decode_table)):
        path = out_dir / f"{name}{suffix}.json"
        if path.exists():
            data = json.loads(path.read_text())
            parts += ["", f"## {title} ({data['date']}, {data.get('device_name', '')}, torch {data['torch']})", "",
                      render(data)]
    (out_dir / f"README{suffix}.md").write_text("\n".join(parts) + "\n")
