"""`hardwire bench subleq|tm|lengths`: compiled sizes, and measured throughput beside the references
(`hardwire bench programs` is compiler/bench_programs.py).

Throughput is measured on machines that never halt (every pass is a real step), so steps = batch x passes,
at batch 1, 64 and 1024, on the fast paths (runtime/fast.py) and on the plain dense pass, per device. The
plain-Python reference (compiler/subleq_ref.py, compiler/tm.py) and the language's interpreter
(compiler/interpret.py) run in the same process, so every rate also comes as a ratio. Each result also holds
the FLOPs and bytes of one pass (runtime/fast_cost.py's `cost`) and the roofline they imply on an H100.
bench/results/README.md gets the tables in markdown.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

from .errors import HardwireError

MEMS, BITS = (64, 256, 1024, 4096), (8, 16, 32)
QUICK_MEMS, QUICK_BITS = (64,), (8,)
BATCHES = (1, 64, 1024)
BB5 = "1RB1LC_1RC1RB_1RD0LE_1LA1LD_1RZ0LA"   # the 5-state busy beaver champion
BB5_STEPS = 47_176_870
# The roofline's peaks: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM5 column: FP32 67 TFLOPS and FP64 34 TFLOPS
# (CUDA cores; PyTorch runs float32 matmuls without TF32 unless asked, so the tensor-core peaks do not apply),
# GPU memory bandwidth 3.35 TB/s (HBM3).
H100 = {"gpu": "NVIDIA H100 SXM5 80GB", "float32_flops_per_s": 67e12, "float64_flops_per_s": 34e12,
        "bytes_per_s": 3.35e12, "source": "NVIDIA H100 Tensor Core GPU datasheet (SXM5): FP32 67 TFLOPS, FP64 34 "
        "TFLOPS, memory bandwidth 3.35 TB/s; float32 matmuls run without TF32 by default, so the CUDA-core peak "
        "applies"}


def counter_image(mem: int) -> list[int]:
    """A program that never halts: mem[mem-1] counts up forever (0: sub; 3: clear a scratch word, jump 0)."""
    image = [mem - 2, mem - 1, 0, mem - 3, mem - 3, 0] + [0] * (mem - 6)
    image[mem - 2] = -1
    return image


def sizes(mems, bits) -> list[dict]:
    from .artifact import compile_program
    from .elaborate import check_file
    from .subleq_cmd import program_path
    rows = []
    for b in bits:
        for m in mems:
            if m > 2 ** (b - 1):
                rows.append({"mem": m, "bits": b, "skipped": f"{b}-bit words address at most {2 ** (b - 1)} words"})
                continue
            model = compile_program(check_file(program_path(), {"mem": m, "bits": b}))
            rows.append({"mem": m, "bits": b, **model.summary(), "compile_s": model.compile_s})
    return rows


def synced(device: str):
    """A timer that waits for the device before each reading."""
    import torch

    def now() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()
    return now


def rate(run, batch: int, passes: int, device: str) -> tuple[float, float, object]:
    """(steps per second, seconds, result) of run(passes) over `batch` machines, after a two-pass warm-up."""
    now = synced(device)
    run(2)
    t0 = now()
    got = run(passes)
    dt = now() - t0
    return batch * passes / dt, dt, got


def loop_on(path: str):
    """The loop on one path: runtime.fast's, or the dense one under the caller's thread setting (run_loop would
    put a small batch on one thread)."""
    if path == "fast":
        from runtime.fast_loop import run_loop_fast
        return run_loop_fast
    from runtime.loop import run_loop_dense
    return run_loop_dense


def roofline(cost: dict, dtype: str, batches=BATCHES) -> dict:
    """What one pass's FLOPs and bytes allow on an H100 (H100): steps per second at each batch size, for the dense
    pass and the fast paths. At batch b a pass moves the weights once and b machines' activations."""
    peak = H100["float64_flops_per_s" if dtype == "float64" else "float32_flops_per_s"]
    out = {"peaks": H100}
    for path in ("dense", "fast"):
        rows = {}
        for b in batches:
            flops = 2 * cost[f"{path}_macs"] * b
            moved = cost[f"{path}_weights"] + b * cost[f"{path}_acts"]
            t_flops, t_bytes = flops / peak, moved / H100["bytes_per_s"]
            if not moved:   # a model with no layers and no weights read: nothing bounds it
                rows[f"batch_{b}"] = {"max_steps_per_s": None, "bound": "no work", "flops_per_byte": None}
                continue
            rows[f"batch_{b}"] = {"max_steps_per_s": round(b / max(t_flops, t_bytes)),
                                  "bound": "compute" if t_flops > t_bytes else "memory",
                                  "flops_per_byte": round(flops / moved, 2)}
        out[path] = rows
    return out


def per_pass(cost: dict) -> dict:
    """One pass for one machine: FLOPs (2 per multiply-add) and bytes, dense and fast."""
    return {"dense_flops": 2 * cost["dense_macs"], "fast_flops": 2 * cost["fast_macs"],
            "dense_bytes": cost["dense_bytes"], "fast_bytes": cost["fast_bytes"],
            "dense_weight_bytes": cost["dense_weights"], "fast_weight_bytes": cost["fast_weights"],
            "fast_coo_nonzeros": cost["fast_coo"], "fast_ops": cost["fast_ops"], "dense_ops": cost["dense_ops"]}


def pass_cost(model, seq: list) -> dict:
    """runtime.fast_cost's count of one pass (a loop's body, else every layer) over input seq, one machine."""
    from runtime.fast_cost import cost, pass_plan
    return cost(*pass_plan(model, seq))


def throughput(device: str, batches, mem: int, bits: int, passes: dict, dense_passes: dict, threads: int | None,
               interpreter_steps: int = 0) -> dict:
    """SUBLEQ steps per second at each batch size, fast and dense, beside the emulator and the interpreter."""
    import torch

    from runtime.model import from_compiled
    from runtime.threads import intra_op_threads

    from . import subleq_ref
    from .artifact import compile_program
    from .elaborate import check_file
    from .interpret import execute
    from .subleq_cmd import FLOAT32_MAX_BITS, program_path
    dtype = torch.float32 if bits <= FLOAT32_MAX_BITS else torch.float64
    prog = check_file(program_path(), {"mem": mem, "bits": bits})
    model = from_compiled(compile_program(prog), device, dtype)
    image = counter_image(mem)
    t0 = time.perf_counter()
    subleq_ref.run(image, mem=mem, bits=bits, max_steps=200_000)
    emulator = 200_000 / (time.perf_counter() - t0)
    out = {"mem": mem, "bits": bits, "dtype": str(dtype).replace("torch.", ""), "dense_threads": threads,
           "fast_threads": 1, "emulator_steps_per_s": round(emulator, 1)}
    if interpreter_steps:
        t0 = time.perf_counter()
        execute(prog, image, max_steps=interpreter_steps)
        out["interpreter_steps_per_s"] = round(interpreter_steps / (time.perf_counter() - t0), 2)
    for b in batches:
        row: dict = {}
        for path, n in (("fast", passes[b]), ("dense", dense_passes.get(b))):
            if not n:
                continue
            with intra_op_threads(threads if path == "dense" else None):
                r, dt, got = rate(lambda k: loop_on(path)(model, [image] * b, max_steps=k), b, n,
                                  device)
            want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=n)
            row[path] = {"steps_per_s": round(r, 1), "passes": n, "seconds": round(dt, 3),
                         "exact": all(g.outputs["memory"] == want.mem and g.steps == n for g in got)}
        row["steps_per_s"] = row["fast"]["steps_per_s"]
        row["exact"] = all(v["exact"] for v in row.values() if isinstance(v, dict))
        if "dense" in row:
            row["fast_over_dense"] = round(row["fast"]["steps_per_s"] / row["dense"]["steps_per_s"], 2)
        row["fast_over_emulator"] = round(row["fast"]["steps_per_s"] / emulator, 5)
        if "interpreter_steps_per_s" in out:
            row["fast_over_interpreter"] = round(row["fast"]["steps_per_s"] / out["interpreter_steps_per_s"], 1)
        out[f"batch_{b}"] = row
    cost = pass_cost(model, image)
    out["per_pass"] = per_pass(cost)
    out["roofline_h100"] = roofline(cost, out["dtype"], batches)
    return out


def cuda_note() -> dict:
    import torch
    return {"note": f"no CUDA device in this run (torch {torch.__version__}, torch.cuda.is_available() is False); "
                    "run `hardwire bench` on a machine with a GPU to fill this in"}


def precision(bits_list=(16, 20, 22, 24, 32), mem: int = 16, images: int = 200, steps: int = 200) -> dict:
    """Mismatches against the emulator per word width and dtype, on random images (seeded)."""
    import random

    import torch

    from runtime.loop import run_loop
    from runtime.model import from_compiled

    from . import subleq_ref
    from .artifact import compile_program
    from .elaborate import check_file
    from .subleq_cmd import program_path
    out = {}
    for bits in bits_list:
        compiled = compile_program(check_file(program_path(), {"mem": mem, "bits": bits}))
        rng = random.Random(1)
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        batch = [[rng.choice([rng.randint(-1, mem + 1), rng.randint(lo, hi)]) for _ in range(mem)]
                 for _ in range(images)]
        wants = [subleq_ref.run(img, mem=mem, bits=bits, max_steps=steps) for img in batch]
        row = {}
        for dtype in (torch.float32, torch.float64):
            got = run_loop(from_compiled(compiled, "cpu", dtype), batch, max_steps=steps)
            row[str(dtype).replace("torch.", "")] = sum(
                (g.steps, g.halted, g.emitted, g.outputs["memory"]) != (w.steps, w.halted, w.output, w.mem)
                for g, w in zip(got, wants))
        out[str(bits)] = {**row, "images": images, "steps": steps, "mem": mem}
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_subleq(quick: bool = False, out_dir: str = "bench/results", threads: int | None = 1) -> dict:
    """Sizes over memory and word widths; rates at batch 1, 64, 1024 (mem 256, 16-bit words; quick: mem 64,
    8-bit words) and, on the fast path, over memory sizes; precision per word width (not quick)."""
    import torch
    mems, bits = (QUICK_MEMS, QUICK_BITS) if quick else (MEMS, BITS)
    mem, width = (64, 8) if quick else (256, 16)
    fast_passes = {1: 20, 64: 4, 1024: 2} if quick else {1: 2000, 64: 200, 1024: 20}
    dense_passes = {1: 4, 64: 1, 1024: 1} if quick else {1: 100, 64: 5, 1024: 2}
    result = {"date": datetime.date.today().isoformat(), "quick": quick, "torch": torch.__version__,
              "cpu_name": cpu_name(), "cpu_threads": torch.get_num_threads(), "sizes": sizes(mems, bits),
              "workload": "a counter program that never halts (counter_image): every pass is a real step",
              "cpu": throughput("cpu", BATCHES, mem, width, fast_passes, dense_passes, threads,
                                interpreter_steps=3 if quick else 5)}
    by_mem = {}
    for m, w in (((16, 8),) if quick else ((64, 8), (1024, 16), (4096, 16))):
        t = throughput("cpu", (1, 64) if m < 4096 else (1,), m, w, {1: 10 if quick else 300, 64: 2 if quick else 30},
                       {1: 2 if quick else 3}, threads)
        by_mem[f"mem_{m}"] = {"bits": w, **{k: {"steps_per_s": v["steps_per_s"], "exact": v["exact"],
                                                "dense_steps_per_s": v.get("dense", {}).get("steps_per_s")}
                                            for k, v in t.items() if k.startswith("batch_")},
                              "fast_flops_per_pass": t["per_pass"]["fast_flops"],
                              "dense_flops_per_pass": t["per_pass"]["dense_flops"]}
    result["cpu"]["by_mem"] = by_mem
    if not quick:
        result["precision_mismatches"] = precision()
    if torch.cuda.is_available():
        result["device_name"] = torch.cuda.get_device_name()
        result["cuda"] = throughput("cuda", BATCHES, mem, width, {1: 1000, 64: 1000, 1024: 200},
                                    {1: 200, 64: 50, 1024: 5}, None)
    else:
        result["device_name"] = result["cpu_name"]
        result["cuda"] = cuda_note()
    name = "subleq_quick.json" if quick else "subleq.json"
    write_json(Path(out_dir) / name, result)
    write_markdown(Path(out_dir), quick)
    return result


def write_json(path: Path, data: dict) -> None:
    """Atomic: a temp file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def fmt(v, digits: int = 0) -> str:
    return "" if v is None else f"{v:,.{digits}f}"


def table(result: dict) -> str:
    """The SUBLEQ sizes and rates as markdown."""
    lines = ["| mem | bits | layers | heads | d_model | d_mlp | params | non-zero | compile s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        if "skipped" in r:
            lines.append(f"| {r['mem']} | {r['bits']} | skipped: {r['skipped']} | | | | | | |")
        else:
            lines.append(f"| {r['mem']} | {r['bits']} | {r['layers']} | {r['heads']} | {r['d_model']} | "
                         f"{r['d_mlp']} | {r['params']:,} | {r['nonzero_params']:,} | {r['compile_s']} |")
    if "precision_mismatches" in result:
        lines.append("\n| bits | float32 mismatches | float64 mismatches |\n|---|---|---|")
        for bits, r in result["precision_mismatches"].items():
            lines.append(f"| {bits} | {r['float32']} / {r['images']} | {r['float64']} / {r['images']} |")
    lines += rate_tables(result, lambda t: f"mem {t['mem']}, {t['bits']}-bit words, {t['dtype']}; steps per second, "
                                           "all machines together", SUBLEQ_RATES, subleq_notes)
    return "\n".join(lines)


def subleq_notes(t: dict) -> list[str]:
    """What follows one device's SUBLEQ rates: the emulator and interpreter rates, then rates per memory size."""
    lines = [f"\nplain-Python emulator: {fmt(t['emulator_steps_per_s'])} steps/s; language interpreter: "
             f"{fmt(t.get('interpreter_steps_per_s'), 2)} steps/s"]
    if t.get("by_mem"):
        lines.append("\n| mem | bits | fast, batch 1 | dense, batch 1 | fast, batch 64 | FLOPs per pass, fast |"
                     " FLOPs per pass, dense |\n|---|---|---|---|---|---|---|")
        for m, r in t["by_mem"].items():
            lines.append(f"| {m[4:]} | {r['bits']} | {fmt(r['batch_1']['steps_per_s'])} | "
                         f"{fmt(r['batch_1'].get('dense_steps_per_s'))} | "
                         f"{fmt(r.get('batch_64', {}).get('steps_per_s'))} | {r['fast_flops_per_pass']:,} | "
                         f"{r['dense_flops_per_pass']:,} |")
    return lines


Column = tuple[str, Callable[[dict], str]]  # a rate table's header, and its cell from one batch row

SUBLEQ_RATES: list[Column] = [
    ("fast", lambda v: fmt(v["fast"]["steps_per_s"])),
    ("dense", lambda v: fmt(v.get("dense", {}).get("steps_per_s"))),
    ("fast / dense", lambda v: fmt(v.get("fast_over_dense"), 1)),
    ("fast / emulator", lambda v: f"{v['fast_over_emulator']:.4f}"),
    ("fast / interpreter", lambda v: fmt(v.get("fast_over_interpreter"), 0)),
    ("exact", lambda v: str(v["exact"]))]
TM_RATES: list[Column] = [
    ("loop fast", lambda v: fmt(v.get("fast", {}).get("steps_per_s"))),
    ("loop dense", lambda v: fmt(v.get("dense", {}).get("steps_per_s"))),
    ("fast / dense", lambda v: fmt(v.get("fast_over_dense"), 1)),
    ("fast / simulator", lambda v: f"{v.get('fast_over_simulator', 0):.4f}"),
    ("cot fast", lambda v: fmt(v.get("fast", {}).get("cot_tokens_per_s"))),
    ("cot dense", lambda v: fmt(v.get("dense", {}).get("cot_tokens_per_s"))),
    ("exact", lambda v: str(v["exact"]))]


def rate_tables(result: dict, caption: Callable[[dict], str], columns: list[Column],
                notes: Callable[[dict], list[str]]) -> list[str]:
    """Per device, a rate table with one row per batch size, its notes and roofline (one writer for both benchmarks)."""
    lines = []
    for dev in ("cpu", "cuda"):
        t = result.get(dev, {})
        if "note" in t or not t:
            lines.append(f"\n{dev}: {t.get('note', 'not measured')}")
            continue
        lines.append(f"\n{dev} ({caption(t)}):\n\n| batch | {' | '.join(h for h, _ in columns)} |\n"
                     + "|---" * (len(columns) + 1) + "|")
        lines += [f"| {k[6:]} | {' | '.join(cell(v) for _, cell in columns)} |"
                  for k, v in t.items() if k.startswith("batch_")]
        lines += notes(t)
        if "per_pass" in t:
            lines.append(roofline_table(t))
    return lines


def roofline_table(t: dict) -> str:
    p, roof = t["per_pass"], t["roofline_h100"]
    lines = [f"\nOne pass, one machine: dense {p['dense_flops']:,} FLOPs and {p['dense_bytes']:,} bytes; fast "
             f"{p['fast_flops']:,} FLOPs and {p['fast_bytes']:,} bytes. H100 roofline ({roof['peaks']['gpu']}, "
             f"{roof['peaks']['float32_flops_per_s'] / 1e12:g} TFLOPS float32, "
             f"{roof['peaks']['bytes_per_s'] / 1e12:g} TB/s), steps per second at most:\n",
             "| batch | dense | bound | fast | bound |", "|---|---|---|---|---|"]
    for k, d in roof["dense"].items():
        f = roof["fast"][k]
        lines.append(f"| {k[6:]} | {d['max_steps_per_s']:,} | {d['bound']} | {f['max_steps_per_s']:,} | {f['bound']} |")
    return "\n".join(lines)


def write_markdown(out_dir: Path, quick: bool) -> None:
    """README.md (README_quick.md) in out_dir: the tables of whichever benchmarks have results there."""
    suffix = "_quick" if quick else ""
    parts = ["# Benchmark results", "", "Written by `hardwire bench programs|subleq|tm` (compiler/bench.py, "
             "compiler/bench_programs.py); the JSON files beside this one hold every figure. Rates are per second, "
             "all machines or inputs of a batch together; *fast* is the fast paths (runtime/fast.py), *dense* the "
             "plain forward pass (runtime/model.py)."]
    from .bench_programs import programs_table
    for name, title, render in (("programs", "Programs", programs_table), ("subleq", "SUBLEQ", table),
                                ("tm", "Turing machines", tm_table)):
        path = out_dir / f"{name}{suffix}.json"
        if path.exists():
            data = json.loads(path.read_text())
            parts += ["", f"## {title} ({data['date']}, {data.get('device_name', '')}, torch {data['torch']})", "",
                      render(data)]
    (out_dir / f"README{suffix}.md").write_text("\n".join(parts) + "\n")


def random_machine(states: int, rng, steps: int, max_cells: int, min_cells: int = 1):
    """A seeded random 2-symbol machine that runs `steps` steps without halting inside max_cells cells (and
    visits at least min_cells)."""
    from . import tm as tmlib
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

    from runtime.generate import generate
    from runtime.model import from_compiled
    from runtime.threads import intra_op_threads

    from . import tm as tmlib
    from .artifact import compile_program
    from .elaborate import check_source
    from .interpret import execute
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
    want_cot, head = [], 0
    for state, new_head, tape in trace:
        want_cot.append(tmlib.step_token(state, tape.get(head, 0), new_head - head, new_head))
        head = new_head
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
    write_markdown(Path(out_dir), quick)
    return result


def bb5_rate(steps: int, threads: int | None = 1, device: str = "cpu") -> dict:
    """The 5-state busy beaver on its looped transformer (a window of every cell the run visits): `steps` passes on
    the fast path, checked against the simulator, and the time to halt that the rate implies; dense for 2 passes."""
    from runtime.loop import run_loop
    from runtime.model import from_compiled
    from runtime.threads import intra_op_threads

    from . import tm as tmlib
    from .artifact import compile_program
    from .elaborate import check_source
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

    from runtime.generate import generate
    from runtime.model import from_compiled

    from . import tm as tmlib
    from .artifact import compile_program
    from .elaborate import check_source
    machine, ref = random_machine(3, random.Random(7), tokens - 1, 32)
    trace: list = []
    tmlib.simulate(machine, [0], tokens - 1, trace=trace)
    want, head = [], 0
    for state, new_head, tape in trace:
        want.append(tmlib.step_token(state, tape.get(head, 0), new_head - head, new_head))
        head = new_head
    cells, offset = tmlib.window_for(machine, [0], ref, None)
    compiled = compile_program(check_source(tmlib.cot_program(machine, 1, -offset, cells - offset - 1, tokens), "b"))
    out = {"spec": machine.spec, "tokens": tokens, **compiled.summary()}
    for dtype in (torch.float32, torch.float64):
        got = generate(from_compiled(compiled, "cpu", dtype), [[0]])[0]
        first_bad = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
        out[str(dtype).replace("torch.", "")] = {"exact": got == want, "first_mismatch": first_bad}
    return out


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
    from .sweep import sweep
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


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="measure compiled sizes and throughput; writes bench/results/*.json")
    b.add_argument("what", choices=["programs", "subleq", "tm", "lengths"],
                   help="which benchmark (programs: every program in programs/ beside its interpreter and reference)")
    b.add_argument("--quick", action="store_true", help="small sizes on CPU only (what CI runs)")
    b.add_argument("--out", default="bench/results", help="folder for the JSON results")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--only", help="lengths: comma-separated constructions to sweep again (the rest are kept)")
    b.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for the dense pass (the fast paths always run on one; default 1)")


def cmd_bench(a) -> dict:
    if a.what == "programs":
        from .bench_programs import bench_programs
        return bench_programs(a.quick, a.out, a.threads, progress=None if a.json else print)
    if a.what == "tm":
        return bench_tm(a.quick, a.out, a.threads)
    if a.what == "lengths":
        return bench_lengths(a.out, [x for x in (a.only or "").split(",") if x] or None)
    return bench_subleq(a.quick, a.out, a.threads)
