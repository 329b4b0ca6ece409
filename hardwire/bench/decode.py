"""`hardwire bench decode`: tokens per second against the sequence length, per head path (bench/results/decode.json).

The Turing machine's chain of thought (hardwire/machines/turing/cot.py) is decoded on four paths: the dense pass
(`fast=False`), the fast paths (`fast=True`, every head a softmax over its KV cache), index attention
(`attention="index"`, every proven head a table lookup) as tensor operations per step (`kernel="torch"`) and as
one numba kernel (`kernel="native"`, runtime/index_native.py; its JIT compile is timed apart). Each run times the
tokens at the windows' edges (generate's on_token, or its stamps), and the rates are given per window of tokens:
how the cost of a token grows with the sequence, or does not. Every run is checked token for token against the
simulator. Percepta's reported 30,000 tokens/s is the reference line.
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

from hardwire.bench.common import cpu_name, fmt, write_json
from hardwire.bench.decode_words import BB5, bench_halt, bench_words, head_rows, run_paths, word_plan

BB4 = "1RB1LB_1LA0LC_1RZ1LD_1RD0RA"          # halts after 107 steps
PERCEPTA = {"tokens_per_s": 30_000, "source": "Percepta's transformer-vm (a WASM interpreter compiled into a "
            "7-layer transformer, d_model 36): more than 30,000 tokens/s on a CPU over runs of about a million "
            "tokens, by hard attention over 2-D keys as a convex-hull query (issue 20)"}


def plan(quick: bool, long: bool) -> list[dict]:
    """The runs: (machine, tokens the model is built for, windows, which paths run how many tokens)."""
    if quick:
        return [{"name": "BB(4) to halt", "spec": BB4, "steps": 200, "windows": [[10, 108]], "limit": {}},
                {"name": "BB(5) prefix", "spec": BB5, "steps": 300, "windows": [[20, 100], [100, 300]], "limit": {}}]
    runs = [{"name": "BB(4) to halt", "spec": BB4, "steps": 200, "windows": [[10, 108]], "limit": {}},
            {"name": "BB(5) prefix", "spec": BB5, "steps": 2_000, "windows": [[200, 2_000]], "limit": {}}]
    # the softmax paths cost about 20 ms a token at 20,000 (more at 65,535): their first 2,000 tokens only, unless
    # --long, which runs them to 20,000 and index attention to the chain-of-thought cap
    short = {"dense": 2_000, "fast": 2_000}
    runs.append({"name": "BB(5) prefix", "spec": BB5, "steps": 20_000, "windows": [[200, 2_000], [2_000, 20_000]],
                 "limit": {} if long else short})
    if long:
        runs.append({"name": "BB(5) prefix", "spec": BB5, "steps": 65_535,
                     "windows": [[200, 2_000], [2_000, 20_000], [20_000, 65_535]], "limit": short})
    return runs


def expected_tokens(machine, steps: int) -> tuple[list[str], object]:
    """The simulator's steps as chain-of-thought tokens (with `halt` after an undefined transition)."""
    from hardwire.machines.turing import tm as tmlib
    trace: list = []
    ref = tmlib.simulate(machine, [0], max_steps=steps, trace=trace)
    return tmlib.cot_tokens(trace, ref), ref


def bench_run(run: dict, threads: int | None) -> dict:
    """One machine and model size on every path."""
    import torch

    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.turing import tm as tmlib
    from hardwire.runtime.index_attention import derive
    from hardwire.runtime.model import from_compiled
    machine = tmlib.parse_spec(run["spec"])
    want, ref = expected_tokens(machine, run["steps"])
    cells, offset = tmlib.window_for(machine, [0], ref, None)
    t0 = time.perf_counter()
    compiled = compile_program(check_source(tmlib.cot_program(machine, 1, -offset, cells - offset - 1,
                                                               tmlib.cot_length(1, ref)), "bench"))
    compile_s = time.perf_counter() - t0
    model = from_compiled(compiled, "cpu", torch.float32)
    t0 = time.perf_counter()
    rules = derive(model)
    return {"name": run["name"], "spec": run["spec"], "tokens": len(want), "halted": ref.halted, "cells": cells,
            "layers": compiled.config["n_layers"], "d_model": compiled.config["d_model"],
            "max_len": compiled.config["max_len"], "compile_s": round(compile_s, 2),
            "prove_s": round(time.perf_counter() - t0, 3),
            "heads": head_rows(rules), "paths": run_paths(model, [0], want, run, threads)}


def native_jit(cold: bool) -> dict:
    """The native kernel's JIT cost in float32: its first call in this process less a second one (loading the
    on-disk cache, or compiling where there is none), and with cold=True a compile from an empty cache, measured
    in a fresh process (NUMBA_CACHE_DIR pointed at a new folder)."""
    import os
    import subprocess
    import sys
    import tempfile

    from hardwire.runtime.index_native import available
    if not available():
        return {"note": "numba is not installed (the `native` extra)"}
    probe = ("import time, torch\n"
             "from hardwire.compiler.check.elaborate import check_source\n"
             "from hardwire.compiler.pipeline import compile_program\n"
             "from hardwire.machines.turing import tm as tmlib\n"
             "from hardwire.runtime.generate import generate\n"
             "from hardwire.runtime.model import from_compiled\n"
             f"m = tmlib.parse_spec({BB4!r})\n"
             "ref = tmlib.simulate(m, [0], max_steps=200)\n"
             "cells, off = tmlib.window_for(m, [0], ref, None)\n"
             "src = tmlib.cot_program(m, 1, -off, cells - off - 1, tmlib.cot_length(1, ref))\n"
             "model = from_compiled(compile_program(check_source(src, 'jit')), 'cpu', torch.float32)\n"
             "t = []\n"
             "for _ in range(2):\n"
             "    t0 = time.perf_counter()\n"
             "    generate(model, [[0]], attention='index', kernel='native')\n"
             "    t.append(time.perf_counter() - t0)\n"
             "print(t[0] - t[1])\n")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("first_call_s", dict(os.environ))]
        if cold:
            runs.append(("cold_compile_s", {**os.environ, "NUMBA_CACHE_DIR": tmp}))
        for key, env in runs:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
            out[key] = round(float(done.stdout.split()[-1]), 2) if done.returncode == 0 else None
    out["note"] = ("first_call_s: the first native decode in a process less a second (the kernel loaded from "
                   "numba's on-disk cache, or compiled where it has none); cold_compile_s: the same from an empty "
                   "cache, float32 (float64 compiles once more)")
    return out


def bench_decode(quick: bool = False, out_dir: str = "bench/results", threads: int | None = 1,
                 long: bool = False, only: list[str] | None = None) -> dict:
    """Every run of plan() on CPU, the word chain of thought (decode_words.py) and, with --long, BB(5) to halt;
    writes decode.json (decode_quick.json). only: some of "cells", "words", "halt", run again into the existing
    file (the rest kept)."""
    import json

    import torch

    path = Path(out_dir) / ("decode_quick.json" if quick else "decode.json")
    if only:
        unknown = set(only) - {"cells", "words", "halt", "halt_cot", "halt_loop"}
        if unknown:
            from hardwire.compiler.core.errors import HardwireError
            raise HardwireError(f"bench decode --only takes cells, words, halt (halt_cot, halt_loop), not "
                                f"{sorted(unknown)[0]!r}")
        result = json.loads(path.read_text()) if path.exists() else {}
        result.update({"torch": torch.__version__, "device": "cpu", "device_name": cpu_name(), "cpu_name": cpu_name(),
                       "reference": PERCEPTA})
        result.setdefault("runs", [])
        if "cells" in only:
            result["runs"] = [bench_run(r, threads) for r in plan(quick, long)]
        if "words" in only:
            result["words"] = bench_words(word_plan(quick, long))
        parts = tuple(p for p in ("cot", "loop") if "halt" in only or f"halt_{p}" in only)
        if parts:
            result["halt"] = bench_halt(parts, result.get("halt"))
        result["date"] = datetime.date.today().isoformat()
        write_json(path, result)
        return result
    result = {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "device": "cpu",
              "device_name": cpu_name(), "cpu_name": cpu_name(), "quick": quick, "long": long, "threads": threads,
              "reference": PERCEPTA,
              "note": "tokens per second of one chain of thought (batch 1, float32), per window of generated "
                      "tokens [from, to); dense and fast score every key of a cache as long as the model's "
                      "max_len at every token, index looks proven heads up (tensor operations per step), native "
                      "runs the same lookups as one numba kernel (its JIT cost in native_jit, not in the rates); "
                      "a path with a limit ran only its first tokens (every path runs to the end with --long)",
              "native_jit": native_jit(cold=not quick),
              "runs": [bench_run(r, threads) for r in plan(quick, long)],
              "words": bench_words(word_plan(quick, long))}
    if long:
        result["halt"] = bench_halt()
    write_json(path, result)
    return result


def decode_table(result: dict) -> str:
    """Tokens per second per run, path and window, as markdown."""
    lines = [f"Reference: Percepta, {result['reference']['tokens_per_s']:,} tokens/s.", "",
             "| run | tokens | d_model | path | " + "window | tokens/s | " * 3 + "exact |",
             "|---|---|---|---|" + "---|---|" * 3 + "---|"]
    jit = result.get("native_jit", {})
    if "first_call_s" in jit:
        lines[2:2] = [f"Native kernel JIT: first call {jit['first_call_s']} s"
                      + (f", cold compile {jit['cold_compile_s']} s" if jit.get("cold_compile_s") else "") + ".", ""]
    for r in result["runs"]:
        lines += rows(r, 3)
    words = result.get("words")
    if words:
        k = max(len(p.get("windows", [])) for p in words["paths"].values())
        lines += ["", f"Word tokens ({words['dtype']}, position rows as a {words['positions']}, max_len "
                      f"{words['max_len']:,}):", "", "| run | tokens | d_model | path | " + "window | tokens/s | " * k
                  + "exact |", "|---|---|---|---|" + "---|---|" * k + "---|", *rows(words, k)]
    halt = result.get("halt")
    if halt:
        c, lp = halt["cot"], halt["loop"]
        lines += ["", f"BB(5) to halt, chain of thought (`{c['command']}`): " +
                  (f"{c['steps']:,} steps, halted {c['halted']}, matches the simulator {c['matches_reference']} "
                   f"(every token: {c.get('every_token_matches')}), {c['run_s']:,} s decoding "
                   f"({fmt(c['decode_tokens_per_s'])} tokens/s), {c['wall_s']:,} s wall, peak {c['peak_rss_gb']} GB; "
                   f"the simulator {c['reference_s']} s." if c["returncode"] == 0 else f"failed: {c.get('stderr')}"),
                  f"BB(5) looped (`{lp['command']}`): " +
                  (f"{fmt(lp['steps_per_s'])} steps/s, about {lp['hours_to_halt_at_this_rate']} hours to halt "
                   "(not run to halt)." if "steps_per_s" in lp else f"failed: {lp.get('stderr')}")]
    return "\n".join(lines)


def rows(r: dict, k: int) -> list[str]:
    """One run's markdown rows: per path its windows' rates (k columns of windows) and whether it was exact."""
    out = []
    for path, p in r["paths"].items():
        if "windows" not in p:
            out.append(f"| {r['name']} | {r['tokens']:,} | {r['d_model']:,} | {path} | {p['note']} |")
            continue
        cells = [f"{w['from']:,}–{w['to']:,} | {fmt(w['tokens_per_s']) or 'not run'}" for w in p["windows"]]
        cells += [" | "] * (k - len(cells))
        out.append(f"| {r['name']} | {r['tokens']:,} | {r['d_model']:,} | {path} | {' | '.join(cells)} | "
                   f"{p['exact']} |")
    return out
