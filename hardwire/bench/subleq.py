"""`hardwire bench subleq`: compiled sizes, and measured throughput beside the references (`hardwire bench
programs` is hardwire/bench/programs.py, `tm` hardwire/bench/tm.py, which shares this loop timing).

Throughput is measured on machines that never halt (every pass is a real step), so steps = batch x passes,
at batch 1, 64 and 1024, on the fast paths (runtime/fast.py) and on the plain dense pass, per device. The
plain-Python reference (hardwire/machines/subleq/emulator.py, hardwire/machines/turing/tm.py) and the language's
interpreter (compiler/interpret.py) run in the same process, so every rate also comes as a ratio. Each result also holds
the FLOPs and bytes of one pass (runtime/fast_cost.py's `cost`) and the roofline they imply on an H100.
bench/results/README.md gets the tables in markdown."""
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
    write_json,
)
from hardwire.machines.subleq.program import counter_image

MEMS, BITS = (64, 256, 1024, 4096), (8, 16, 32)


QUICK_MEMS, QUICK_BITS = (64,), (8,)


def sizes(mems, bits) -> list[dict]:
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.subleq.program import program_path
    rows = []
    for b in bits:
        for m in mems:
            if m > 2 ** (b - 1):
                rows.append({"mem": m, "bits": b, "skipped": f"{b}-bit words address at most {2 ** (b - 1)} words"})
                continue
            model = compile_program(check_file(program_path(), {"mem": m, "bits": b}))
            rows.append({"mem": m, "bits": b, **model.summary(), "compile_s": model.compile_s})
    return rows


def loop_on(path: str):
    """The loop on one path: runtime.fast's, or the dense one under the caller's thread setting (run_loop would
    put a small batch on one thread)."""
    if path == "fast":
        from hardwire.runtime.fast_loop import run_loop_fast
        return run_loop_fast
    from hardwire.runtime.loop import run_loop_dense
    return run_loop_dense


def throughput(device: str, batches, mem: int, bits: int, passes: dict, dense_passes: dict, threads: int | None,
               interpreter_steps: int = 0) -> dict:
    """SUBLEQ steps per second at each batch size, fast and dense, beside the emulator and the interpreter."""
    import torch

    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.interpret import execute
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.subleq import emulator as subleq_ref
    from hardwire.machines.subleq.program import FLOAT32_MAX_BITS, program_path
    from hardwire.runtime.model import from_compiled
    from hardwire.runtime.threads import intra_op_threads
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


def precision(bits_list=(16, 20, 22, 24, 32), mem: int = 16, images: int = 200, steps: int = 200) -> dict:
    """Mismatches against the emulator per word width and dtype, on random images (seeded)."""
    import random

    import torch

    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.subleq import emulator as subleq_ref
    from hardwire.machines.subleq.program import program_path
    from hardwire.runtime.loop import run_loop
    from hardwire.runtime.model import from_compiled
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


def bench_subleq(quick: bool = False, out_dir: str = "bench/results", threads: int | None = 1,
                 only: str | None = None) -> dict:
    """Sizes over memory and word widths; rates at batch 1, 64, 1024 (mem 256, 16-bit words; quick: mem 64,
    8-bit words) and, on the fast path, over memory sizes; precision per word width (not quick); the trace mode's
    rates by memory size (hardwire/bench/subleq_cot.py). only="cot" measures the trace mode alone and replaces
    its entry in the JSON already there, keeping the rest as it was measured."""
    import json

    import torch

    from hardwire.bench.subleq_cot import bench_trace
    name = "subleq_quick.json" if quick else "subleq.json"
    if only == "cot":
        path = Path(out_dir) / name
        if not path.exists():
            from hardwire.compiler.core.errors import HardwireError
            raise HardwireError(f"--only cot updates {path}, which is not there yet: run `hardwire bench subleq"
                                f"{' --quick' if quick else ''}` first")
        result = json.loads(path.read_text())
        result["trace_mode"] = bench_trace(quick)
        write_json(path, result)
        return result
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
    result["trace_mode"] = bench_trace(quick)
    if torch.cuda.is_available():
        result["device_name"] = torch.cuda.get_device_name()
        result["cuda"] = throughput("cuda", BATCHES, mem, width, {1: 1000, 64: 1000, 1024: 200},
                                    {1: 200, 64: 50, 1024: 5}, None)
    else:
        result["device_name"] = result["cpu_name"]
        result["cuda"] = cuda_note()
    write_json(Path(out_dir) / name, result)
    return result


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
    if "trace_mode" in result:   # hardwire/bench/subleq_cot.py
        from hardwire.bench.subleq_cot import trace_table
        lines += ["\nThe trace mode (`--mode cot`), instructions per second, all machines together "
                  f"({result['trace_mode']['date']}):", *trace_table(result["trace_mode"])]
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


SUBLEQ_RATES: list[Column] = [
    ("fast", lambda v: fmt(v["fast"]["steps_per_s"])),
    ("dense", lambda v: fmt(v.get("dense", {}).get("steps_per_s"))),
    ("fast / dense", lambda v: fmt(v.get("fast_over_dense"), 1)),
    ("fast / emulator", lambda v: f"{v['fast_over_emulator']:.4f}"),
    ("fast / interpreter", lambda v: fmt(v.get("fast_over_interpreter"), 0)),
    ("exact", lambda v: str(v["exact"]))]
