"""`hardwire bench tm`: the looped and chain-of-thought Turing machines' sizes and throughput, busy beaver 5's rate."""
from __future__ import annotations

import datetime
import time
from pathlib import Path

from hardwire.bench.common import (
    BATCHES,
    Column,
    cpu_name,
    cuda_note,
    fmt,
    pass_cost,
    per_pass,
    rate,
    rate_tables,
    roofline,
    synced,
    write_json,
)
from hardwire.bench.subleq import loop_on

BB5 = "1RB1LC_1RC1RB_1RD0LE_1LA1LD_1RZ0LA"   # the 5-state busy beaver champion


BB5_STEPS = 47_176_870


TM_RATES: list[Column] = [
    ("loop fast", lambda v: fmt(v.get("fast", {}).get("steps_per_s"))),
    ("loop dense", lambda v: fmt(v.get("dense", {}).get("steps_per_s"))),
    ("fast / dense", lambda v: fmt(v.get("fast_over_dense"), 1)),
    ("fast / simulator", lambda v: f"{v.get('fast_over_simulator', 0):.4f}"),
    ("cot fast", lambda v: fmt(v.get("fast", {}).get("cot_tokens_per_s"))),
    ("cot dense", lambda v: fmt(v.get("dense", {}).get("cot_tokens_per_s"))),
    ("exact", lambda v: str(v["exact"]))]


def random_machine(states: int, rng, steps: int, max_cells: int, min_cells: int = 1):
    """A seeded random 2-symbol machine that runs `steps` steps without halting inside max_cells cells (and
    visits at least min_cells)."""
    from hardwire.machines.turing import tm as tmlib
    letters = [chr(ord("A") + i) for i in range(states)]
    while True:
        spec = "_".join("".join(f"{rng.randint(0, 1)}{rng.choice('LR')}{rng.choice(letters)}" for _ in range(2))
                        for _ in range(states))
        machine = tmlib.parse_spec(spec)
        ref = tmlib.simulate(machine, [], steps)
        if not ref.halted and min_cells <= ref.head_max - ref.head_min + 1 <= max_cells:
            return machine, ref


def bench_tm(quick: bool = False, out_dir: str = "bench/results", threads: int | None = 1) -> dict:
    """Sizes per mode for 2..6 states; steps per second of the looped machine and tokens per second of the chain
    of thought at batch 1, 64 and 1024, fast and dense, on CPU (and CUDA when present), beside the simulator and
    the interpreter; the 5-state busy beaver's rate on the fast path and its projected time to halt (not quick)."""
    import random

    import torch

    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.interpret import execute
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.turing import tm as tmlib
    from hardwire.runtime.generate import generate
    from hardwire.runtime.model import from_compiled
    from hardwire.runtime.threads import intra_op_threads
    rng = random.Random(0)
    steps = 64 if quick else 200
    sizes = []
    for n in (2, 3) if quick else (2, 3, 4, 5, 6):
        machine, ref = random_machine(n, rng, steps, 48)
        cells, offset = tmlib.window_for(machine, [], ref, None)
        loop = compile_program(check_source(tmlib.loop_program(machine, cells, offset), "bench"))
        cells, offset = tmlib.window_for(machine, [0], ref, None)
        cot = compile_program(check_source(tmlib.cot_program(machine, 1, -offset, cells - offset - 1,
                                                             tmlib.cot_length(1, ref)), "bench"))
        sizes.append({"states": n, "spec": machine.spec, "cells": cells, "steps": steps,
                      "loop": {**loop.summary(), "compile_s": loop.compile_s},
                      "cot": {**cot.summary(), "compile_s": cot.compile_s}})
    loop_passes = {1: 100, 64: 10, 1024: 4} if quick else {1: 4000, 64: 1000, 1024: 200}
    dense_passes = {1: 20, 64: 4, 1024: 2} if quick else {1: 1000, 64: 100, 1024: 20}
    cot_tokens = 32 if quick else 200
    machine, ref = random_machine(3, random.Random(11), max(loop_passes.values()) + 2, 64, 24)
    cells, offset = tmlib.window_for(machine, [], ref, None)
    loop_src = tmlib.loop_program(machine, cells, offset)
    trace: list = []
    tmlib.simulate(machine, [0], cot_tokens, trace=trace)
    want_cot = tmlib.cot_tokens(trace)
    pc, po = tmlib.window_for(machine, [0], tmlib.simulate(machine, [0], cot_tokens), None)
    cot_src = tmlib.cot_program(machine, 1, -po, pc - po - 1, cot_tokens + 1)
    t0 = time.perf_counter()
    tmlib.simulate(machine, [], 200_000)
    simulator = 200_000 / (time.perf_counter() - t0)
    prog = check_source(loop_src, "b")
    t0 = time.perf_counter()
    execute(prog, [0] * cells, max_steps=200)
    interpreter = 200 / (time.perf_counter() - t0)
    result = {"date": datetime.date.today().isoformat(), "quick": quick, "torch": torch.__version__,
              "cpu_name": cpu_name(), "cpu_threads": torch.get_num_threads(), "sizes": sizes,
              "throughput_machine": machine.spec, "cells": cells, "cot_tokens": cot_tokens,
              "workload": "a 3-state machine that does not halt over the measured passes (a window of "
                          f"{cells} cells); the chain of thought generates {cot_tokens} tokens per row",
              "simulator_steps_per_s": round(simulator, 1), "interpreter_steps_per_s": round(interpreter, 1)}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        loop = from_compiled(compile_program(prog), dev)
        cot = from_compiled(compile_program(check_source(cot_src, "b")), dev)
        rates: dict = {"dense_threads": threads, "fast_threads": 1}
        for b in BATCHES:
            row: dict = {}
            for path in ("fast", "dense"):
                with intra_op_threads(threads if path == "dense" else None):
                    n = (loop_passes if path == "fast" else dense_passes)[b]
                    r, dt, got = rate(lambda k: loop_on(path)(loop, [[0] * cells] * b, max_steps=k),
                                      b, n, dev)
                    want = tmlib.simulate(machine, [], n)
                    exact = all(g.steps == n and g.outputs["final_tape"] == want.window(-offset, cells - offset - 1)
                                for g in got)
                    now = synced(dev)
                    t0 = now()
                    gen = generate(cot, [[0]] * b, fast=path == "fast")
                    cot_s = now() - t0
                    exact = exact and all(x == want_cot for x in gen)
                row[path] = {"steps_per_s": round(r, 1), "passes": n, "seconds": round(dt, 3),
                             "cot_tokens_per_s": round(b * cot_tokens / cot_s, 1), "exact": exact}
            row["steps_per_s"] = row["fast"]["steps_per_s"]
            row["cot_tokens_per_s"] = max(row["fast"]["cot_tokens_per_s"], row["dense"]["cot_tokens_per_s"])
            row["exact"] = row["fast"]["exact"] and row["dense"]["exact"]
            row["fast_over_dense"] = round(row["fast"]["steps_per_s"] / row["dense"]["steps_per_s"], 2)
            row["fast_over_simulator"] = round(row["fast"]["steps_per_s"] / simulator, 5)
            row["fast_over_interpreter"] = round(row["fast"]["steps_per_s"] / interpreter, 2)
            rates[f"batch_{b}"] = row
        cost = pass_cost(loop, [0] * cells)
        rates["per_pass"] = per_pass(cost)
        rates["roofline_h100"] = roofline(cost, "float32")
        result[dev] = rates
    if "cuda" not in devices:
        result["cuda"] = cuda_note()
    result["device_name"] = torch.cuda.get_device_name() if "cuda" in devices else result["cpu_name"]
    if not quick:
        result["cot_long_run"] = cot_long_run(4000)
        result["bb5"] = bb5_rate(20_000, threads)
    write_json(Path(out_dir) / ("tm_quick.json" if quick else "tm.json"), result)
    return result


def bb5_rate(steps: int, threads: int | None = 1, device: str = "cpu") -> dict:
    """The 5-state busy beaver on its looped transformer (a window of every cell the run visits): `steps` passes on
    the fast path, checked against the simulator, and the time to halt that the rate implies; dense for 2 passes."""
    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.turing import tm as tmlib
    from hardwire.runtime.loop import run_loop
    from hardwire.runtime.model import from_compiled
    from hardwire.runtime.threads import intra_op_threads
    machine = tmlib.parse_spec(BB5)
    t0 = time.perf_counter()
    full = tmlib.simulate(machine, [], BB5_STEPS + 1)
    sim_s = time.perf_counter() - t0
    cells, offset = tmlib.window_for(machine, [], full, None)
    compiled = compile_program(check_source(tmlib.loop_program(machine, cells, offset), "bb5"))
    model = from_compiled(compiled, device)
    tokens = [[0] * cells]
    out = {"spec": BB5, "steps_to_halt": full.steps, "halted": full.halted, "ones": full.ones, "cells": cells,
           **compiled.summary(), "compile_s": compiled.compile_s, "simulator_s_to_halt": round(sim_s, 1)}
    now = synced(device)
    t0 = now()
    got = run_loop(model, tokens, max_steps=steps, fast=True)[0]
    fast_s = now() - t0
    want = tmlib.simulate(machine, [], steps)
    out.update(measured_steps=steps, fast_seconds=round(fast_s, 2), fast_steps_per_s=round(steps / fast_s, 1),
               exact=(got.steps == steps and got.outputs["final_tape"] == want.window(-offset, cells - offset - 1)
                      and got.outputs["final_head"][0] - offset == want.head))
    with intra_op_threads(threads):
        t0 = now()
        loop_on("dense")(model, tokens, max_steps=2)
        dense_s = now() - t0
    out.update(dense_steps_per_s=round(2 / dense_s, 2),
               projected_fast_hours=round(full.steps / (steps / fast_s) / 3600, 2),
               projected_dense_hours=round(full.steps / (2 / dense_s) / 3600, 1), device=device)
    cost = pass_cost(model, tokens[0])
    out["per_pass"] = per_pass(cost)
    out["roofline_h100"] = roofline(cost, "float32", (1,))
    return out


def cot_long_run(tokens: int) -> dict:
    """A chain of thought of `tokens` steps (a random machine that never halts in a small window),
    token for token against the simulator, in float32 and float64."""
    import random

    import torch

    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.turing import tm as tmlib
    from hardwire.runtime.generate import generate
    from hardwire.runtime.model import from_compiled
    machine, ref = random_machine(3, random.Random(7), tokens - 1, 32)
    trace: list = []
    tmlib.simulate(machine, [0], tokens - 1, trace=trace)
    want = tmlib.cot_tokens(trace)
    cells, offset = tmlib.window_for(machine, [0], ref, None)
    compiled = compile_program(check_source(tmlib.cot_program(machine, 1, -offset, cells - offset - 1, tokens), "b"))
    out = {"spec": machine.spec, "tokens": tokens, **compiled.summary()}
    for dtype in (torch.float32, torch.float64):
        got = generate(from_compiled(compiled, "cpu", dtype), [[0]])[0]
        first_bad = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
        out[str(dtype).replace("torch.", "")] = {"exact": got == want, "first_mismatch": first_bad}
    return out


def tm_table(result: dict) -> str:
    """The Turing machine sizes and rates as markdown."""
    lines = ["| states | cells | loop layers | loop d_model | loop d_mlp | loop non-zero | cot layers | cot d_model | "
             "cot d_mlp | cot non-zero |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        lo, co = r["loop"], r["cot"]
        lines.append(f"| {r['states']} | {r['cells']} | {lo['layers']} | {lo['d_model']} | {lo['d_mlp']} | "
                     f"{lo.get('nonzero_params', '')} | {co['layers']} | {co['d_model']} | {co['d_mlp']} | "
                     f"{co.get('nonzero_params', '')} |")
    if "cot_long_run" in result:
        r = result["cot_long_run"]
        lines.append(f"\nchain of thought of {r['tokens']} tokens ({r['spec']}, d_model {r['d_model']}): "
                     f"float32 exact: {r['float32']['exact']}, float64 exact: {r['float64']['exact']}")
    simulator = [f"\nplain-Python simulator: {fmt(result['simulator_steps_per_s'])} steps/s; language interpreter: "
                 f"{fmt(result.get('interpreter_steps_per_s'))} steps/s"] if "simulator_steps_per_s" in result else []
    lines += rate_tables(result, lambda t: f"{result['throughput_machine']}, {result.get('cells', '')} cells; loop: "
                                           "steps per second; cot: tokens per second", TM_RATES, lambda t: simulator)
    if "bb5" in result:
        r = result["bb5"]
        lines.append(f"\n5-state busy beaver {r['spec']} ({r['steps_to_halt']:,} steps, {r['cells']:,} cells, "
                     f"d_model {r['d_model']}): {r['measured_steps']:,} steps on the fast path at "
                     f"{fmt(r['fast_steps_per_s'])} steps/s (exact: {r['exact']}), so about "
                     f"{r['projected_fast_hours']} hours to halt; the dense pass ran {r['dense_steps_per_s']} steps/s "
                     f"(about {r['projected_dense_hours']:,} hours).")
    return "\n".join(lines)
