"""`hardwire bench decode`, the word chain of thought: tokens/s per window out to 10^7 tokens, and BB(5) to halt.

The runs of decode.py use the one-hot cell tokens, whose model grows with the run. These use the word tokens that
`hardwire tm --mode cot` decodes (hardwire/machines/turing/cot_words.py): d_model about 130 whatever the length,
position rows as a formula, one `latest` head. Each path is timed at the windows' edges and checked token for token
against the simulator's words. BB(5) to halt is run end to end through the CLI command a user types, in a fresh
process (its peak memory is that process's), with the plain-Python simulator's time beside it.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

BB5 = "1RB1LC_1RC1RB_1RD0LE_1LA1LD_1RZ0LA"   # halts after 47,176,870 steps
PATHS = {"dense": {"fast": False}, "fast": {"fast": True}, "index": {"attention": "index", "kernel": "torch"},
         "native": {"attention": "index", "kernel": "native"}}
HALT_CMD = ["hardwire", "tm", BB5, "--mode", "cot", "--max-steps", "50000000", "--json"]
LOOP_STEPS = 20_000   # the looped machine's rate is measured over this many steps (its run to halt is ~20 hours),
BB5_CELLS = 12_289    # on the whole tape the run to halt visits (its cost per step grows with the tape)


def windows(stamps, n: int, spans: list[list[int]]) -> list[dict]:
    """Tokens per second over each [a, b) of the n generated tokens (stamps[k]: when token k was read), where run."""
    out = []
    for a, b in spans:
        if a >= n - 1:
            out.append({"from": a, "to": b, "tokens_per_s": None, "note": "not run this far"})
            continue
        b = min(b, n - 1)
        out.append({"from": a, "to": b, "tokens_per_s": round((b - a) / (stamps[b] - stamps[a]), 1)})
    return out


def head_rows(rules: list) -> list[dict]:
    """Each head's proven rule (its margin, score error and leak) or why it was refused, as the JSON records it."""
    from hardwire.runtime.index_attention import Rule
    return [{"layer": r.layer, "head": r.head, "rule": r.kind, "margin": round(r.margin, 3),
             "score_error": float(f"{r.score_error:.3g}"), "leak": float(f"{r.leak:.3g}")}
            if isinstance(r, Rule) else {"layer": r.layer, "head": r.head, "refused": r.why} for r in rules]


def run_paths(model, prompt: list, want, run: dict, threads: int | None = None) -> dict:
    """Every path of PATHS on one chain of thought from `prompt` (the dense one on `threads`), each timed at the
    windows' edges (the kernels' stamps, the others' on_token) and compared with `want` token for token."""
    import numpy as np

    from hardwire.runtime.generate import generate
    from hardwire.runtime.index_native import available
    from hardwire.runtime.threads import intra_op_threads
    out = {}
    if available():   # the kernel loaded (or compiled) before any timing: native_jit measures that apart
        generate(model, [prompt], max_len=len(prompt) + 1, attention="index", kernel="native")
    for path, kw in PATHS.items():
        if path == "native" and not available():
            out[path] = {"note": "numba is not installed (the `native` extra)"}
            continue
        limit = run["limit"].get(path)
        n = min(len(want), limit if limit is not None else len(want))
        stamps: list[float] = []
        edges = {k: None for a, b in run["windows"] for k in (a, min(b, n - 1))}
        timing = {"stamps": edges} if "kernel" in kw else {"on_token": lambda: stamps.append(time.perf_counter())}
        t0 = time.perf_counter()
        with intra_op_threads(threads if path == "dense" else None):
            got = generate(model, [prompt], max_len=None if limit is None else limit + 1, arrays=True, **timing,
                           **kw)[0]
        total = time.perf_counter() - t0
        n = len(got)
        out[path] = {"tokens_run": n, "total_s": round(total, 3), "tokens_per_s": round(n / total, 1),
                     "exact": bool(np.array_equal(np.asarray(got), np.asarray(want[:n]))),
                     "windows": windows(edges if "kernel" in kw else stamps, n, run["windows"])}
    return out


def word_plan(quick: bool, long: bool) -> dict:
    """The word run: tokens, windows, and how far the slower paths go."""
    if quick:
        return {"steps": 3_000, "windows": [[20, 300], [300, 3_000]], "limit": {}}
    top = 10_000_000 if long else 1_000_000
    edges = [200, 2_000, 20_000, 200_000, 2_000_000, 10_000_000]
    return {"steps": top, "windows": [[a, b] for a, b in zip(edges, edges[1:]) if a < top],
            "limit": {"dense": 2_000, "fast": 2_000, "index": 20_000}}


def bench_words(run: dict) -> dict:
    """BB(5)'s word chain of thought for run["steps"] tokens, on every path (float64: the CLI's dtype here)."""
    import torch

    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.turing import cot_words
    from hardwire.machines.turing import tm as tmlib
    from hardwire.runtime.index_attention import derive
    from hardwire.runtime.model import from_compiled
    machine = tmlib.parse_spec(BB5)
    ref = tmlib.simulate(machine, [0], max_steps=run["steps"])
    cells, off = tmlib.window_for(machine, [0], ref, None)
    n_all = tmlib.cot_length(1, ref)
    enc = cot_words.encoding(machine, -off, cells - off - 1, n_all)
    want = cot_words.simulated_words(machine, [0], enc, ref.steps)
    t0 = time.perf_counter()
    compiled = compile_program(check_source(cot_words.cot_word_program(machine, 1, -off, cells - off - 1, n_all),
                                            "bench"), positions="formula")
    compile_s = time.perf_counter() - t0
    model = from_compiled(compiled, "cpu", torch.float64)
    t0 = time.perf_counter()
    rules = derive(model)
    return {"name": "BB(5) prefix, word tokens", "spec": BB5, "encoding": "words", "dtype": "float64",
            "tokens": len(want), "cells": cells, "layers": compiled.config["n_layers"],
            "d_model": compiled.config["d_model"], "max_len": compiled.config["max_len"],
            "positions": "formula" if "embed.position_form" in compiled.tensors else "table",
            "compile_s": round(compile_s, 2), "prove_s": round(time.perf_counter() - t0, 3),
            "heads": head_rows(rules), "paths": run_paths(model, enc.prompt([0]), want, run)}


def bench_halt(parts: tuple[str, ...] = ("cot", "loop"), before: dict | None = None) -> dict:
    """BB(5) to halt (`parts`: both, or one of them run again into `before`): the chain of thought through `hardwire
    tm --mode cot` in a fresh process (wall time, peak memory, its JSON less the tape), and the looped machine's
    rate over LOOP_STEPS steps with the hours to halt it implies (it is not run to halt: about 20 hours here)."""
    out = dict(before or {})
    if "cot" in parts:
        out["cot"] = halt_cot()
        out["simulator_s"] = out["cot"].get("reference_s")
    if "loop" in parts:
        out["loop"] = halt_loop()
    return out


def halt_cot() -> dict:
    """`hardwire tm BB5 --mode cot` to its halt, in a fresh process."""
    cmd = [sys.executable, "-m", "hardwire", *HALT_CMD[1:]]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    cot = {"command": " ".join(HALT_CMD), "returncode": done.returncode, "wall_s": round(wall, 1),
           "peak_rss_gb": round(peak / 1e9, 2)}
    if done.returncode == 0:
        got = json.loads(done.stdout)
        cot.update({k: v for k, v in got.items() if k != "tape"})
        cot["tape_cells"] = len(got["tape"])
        cot["decode_tokens_per_s"] = round(got["tokens"] / got["run_s"], 1)
    else:
        cot["stderr"] = done.stderr[-2000:]
    return cot


def halt_loop() -> dict:
    """The looped machine on BB(5)'s whole tape for LOOP_STEPS steps (exit 3: the step limit, as expected)."""
    loop_cmd = ["hardwire", "tm", BB5, "--mode", "loop", "--max-steps", str(LOOP_STEPS), "--tape", str(BB5_CELLS),
                "--json"]
    done = subprocess.run([sys.executable, "-m", "hardwire", *loop_cmd[1:]], capture_output=True, text=True)
    loop: dict = {"command": " ".join(loop_cmd), "run_to_halt": False}
    if done.returncode in (0, 3):
        got = json.loads(done.stdout)
        rate = got["steps"] / got["run_s"]
        loop.update({"steps": got["steps"], "run_s": got["run_s"], "steps_per_s": round(rate, 1),
                     "matches_reference": got["matches_reference"], "d_model": got.get("d_model"),
                     "hours_to_halt_at_this_rate": round(47_176_870 / rate / 3600, 1)})
    else:
        loop["stderr"] = done.stderr[-2000:]
    return loop
