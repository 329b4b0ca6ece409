"""`hardwire bench subleq`: compiled sizes over memory and word widths, and measured steps per second.

Throughput is measured on a machine that never halts (every pass is a real step), so steps = batch x
passes; the plain-Python emulator runs the same image in the same process, for a ratio.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from .errors import HardwireError

MEMS, BITS = (64, 256, 1024, 4096), (8, 16, 32)
QUICK_MEMS, QUICK_BITS = (64,), (8,)


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


def throughput(device: str, batches, mem: int, bits: int, passes: dict[int, int]) -> dict:
    import torch

    from runtime.loop import run_loop
    from runtime.model import from_compiled

    from . import subleq_ref
    from .artifact import compile_program
    from .elaborate import check_file
    from .subleq_cmd import FLOAT32_MAX_BITS, program_path
    dtype = torch.float32 if bits <= FLOAT32_MAX_BITS else torch.float64
    model = from_compiled(compile_program(check_file(program_path(), {"mem": mem, "bits": bits})), device, dtype)
    image = counter_image(mem)
    out = {"mem": mem, "bits": bits, "dtype": str(dtype).replace("torch.", "")}
    for b in batches:
        n = passes[b]
        run_loop(model, [image] * b, max_steps=2)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        got = run_loop(model, [image] * b, max_steps=n)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=n)
        exact = all(g.outputs["memory"] == want.mem and g.steps == n for g in got)
        out[f"batch_{b}"] = {"steps_per_s": round(b * n / dt, 1), "passes": n, "seconds": round(dt, 3),
                             "exact": exact}
    t0 = time.perf_counter()
    subleq_ref.run(image, mem=mem, bits=bits, max_steps=200_000)
    out["emulator_steps_per_s"] = round(200_000 / (time.perf_counter() - t0), 1)
    return out


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


def bench_subleq(quick: bool = False, out_dir: str = "bench/results") -> dict:
    import torch
    mems, bits = (QUICK_MEMS, QUICK_BITS) if quick else (MEMS, BITS)
    mem, width = (64, 8) if quick else (256, 16)
    batches = (1, 64) if quick else (1, 64, 1024)
    cpu_passes = {1: 50, 64: 5, 1024: 2} if quick else {1: 300, 64: 30, 1024: 3}
    result = {"date": datetime.date.today().isoformat(), "quick": quick, "torch": torch.__version__,
              "cpu_name": cpu_name(), "cpu_threads": torch.get_num_threads(), "sizes": sizes(mems, bits),
              "cpu": throughput("cpu", batches, mem, width, cpu_passes)}
    if not quick:
        result["precision_mismatches"] = precision()
    if torch.cuda.is_available():
        result["device_name"] = torch.cuda.get_device_name()
        result["cuda"] = throughput("cuda", batches, mem, width, {1: 1000, 64: 1000, 1024: 200})
    else:
        result["device_name"] = result["cpu_name"]
    name = "subleq_quick.json" if quick else "subleq.json"
    write_json(Path(out_dir) / name, result)
    return result


def write_json(path: Path, data: dict) -> None:
    """Atomic: a temp file beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def table(result: dict) -> str:
    """The sizes and rates as a markdown table."""
    lines = ["| mem | bits | layers | heads | d_model | d_mlp | params | non-zero |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        if "skipped" in r:
            lines.append(f"| {r['mem']} | {r['bits']} | skipped: {r['skipped']} | | | | | |")
        else:
            lines.append(f"| {r['mem']} | {r['bits']} | {r['layers']} | {r['heads']} | {r['d_model']} | "
                         f"{r['d_mlp']} | {r['params']:,} | {r['nonzero_params']:,} |")
    if "precision_mismatches" in result:
        lines.append("\n| bits | float32 mismatches | float64 mismatches |\n|---|---|---|")
        for bits, r in result["precision_mismatches"].items():
            lines.append(f"| {bits} | {r['float32']} / {r['images']} | {r['float64']} / {r['images']} |")
    for dev in ("cpu", "cuda"):
        if dev in result:
            t = result[dev]
            rates = ", ".join(f"batch {k[6:]}: {v['steps_per_s']:,.0f} steps/s" for k, v in t.items()
                              if k.startswith("batch_"))
            lines.append(f"\n{dev} (mem {t['mem']}, {t['bits']}-bit, {t['dtype']}): {rates}; "
                         f"plain-Python emulator: {t['emulator_steps_per_s']:,.0f} steps/s")
    return "\n".join(lines)


def random_machine(states: int, rng, steps: int, max_cells: int):
    """A seeded random 2-symbol machine that runs `steps` steps without halting inside max_cells cells."""
    from . import tm as tmlib
    letters = [chr(ord("A") + i) for i in range(states)]
    while True:
        spec = "_".join("".join(f"{rng.randint(0, 1)}{rng.choice('LR')}{rng.choice(letters)}" for _ in range(2))
                        for _ in range(states))
        machine = tmlib.parse_spec(spec)
        ref = tmlib.simulate(machine, [], steps)
        if not ref.halted and ref.head_max - ref.head_min + 1 <= max_cells:
            return machine, ref


def bench_tm(quick: bool = False, out_dir: str = "bench/results") -> dict:
    """Sizes per mode for 2..6 states; steps per second of the looped machine, and tokens per second of
    the chain of thought, at batch 1, 64 and 1024 on CPU (and CUDA when present)."""
    import random

    import torch

    from runtime.generate import generate
    from runtime.loop import run_loop
    from runtime.model import from_compiled

    from . import tm as tmlib
    from .artifact import compile_program
    from .elaborate import check_source
    rng = random.Random(0)
    steps = 64 if quick else 200
    sizes = []
    machines = {}
    for n in (2, 3) if quick else (2, 3, 4, 5, 6):
        machine, ref = random_machine(n, rng, steps, 48)
        machines[n] = (machine, ref)
        cells, offset = tmlib.window_for(machine, [], ref, None)
        loop = compile_program(check_source(tmlib.loop_program(machine, cells, offset), "bench"))
        cells, offset = tmlib.window_for(machine, [0], ref, None)
        cot = compile_program(check_source(tmlib.cot_program(machine, 1, -offset, cells - offset - 1,
                                                             tmlib.cot_length(1, ref)), "bench"))
        sizes.append({"states": n, "spec": machine.spec, "cells": cells, "steps": steps,
                      "loop": loop.summary(), "cot": cot.summary()})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    batches = (1, 64) if quick else (1, 64, 1024)
    rates: dict = {}
    machine, ref = machines[3]
    for dev in devices:
        rates[dev] = {}
        cells, offset = tmlib.window_for(machine, [], ref, None)
        loop = from_compiled(compile_program(check_source(tmlib.loop_program(machine, cells, offset), "b")), dev)
        pc, po = tmlib.window_for(machine, [0], ref, None)
        cot = from_compiled(compile_program(check_source(tmlib.cot_program(
            machine, 1, -po, pc - po - 1, tmlib.cot_length(1, ref)), "b")), dev)
        for b in batches:
            t0 = time.perf_counter()
            got = run_loop(loop, [[0] * cells] * b, max_steps=steps)
            t1 = time.perf_counter()
            gen = generate(cot, [[0]] * b)
            t2 = time.perf_counter()
            exact = all(g.steps == ref.steps and g.outputs["final_tape"] == ref.window(-offset, cells - offset - 1)
                        for g in got) and all(len(x) == ref.steps for x in gen)
            rates[dev][f"batch_{b}"] = {"loop_steps_per_s": round(b * steps / (t1 - t0), 1),
                                        "cot_tokens_per_s": round(b * steps / (t2 - t1), 1), "exact": exact}
    if not quick:
        rates["cot_long_run"] = cot_long_run(4000)
    t0 = time.perf_counter()
    tmlib.simulate(machine, [], 200_000)
    result = {"date": datetime.date.today().isoformat(), "quick": quick, "torch": torch.__version__,
              "cpu_name": cpu_name(), "device_name": torch.cuda.get_device_name() if "cuda" in devices
              else cpu_name(), "sizes": sizes, "throughput_machine": machines[3][0].spec, "steps": steps,
              "simulator_steps_per_s": round(200_000 / (time.perf_counter() - t0), 1), **rates}
    write_json(Path(out_dir) / ("tm_quick.json" if quick else "tm.json"), result)
    return result


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
                constructions.append(old[name])
            continue
        runs = {dt: sweep(f"programs/{name}.hw", lengths, dt, samples) for dt in ("float32", "float64")}
        last = runs["float32"]["rows"][-1]
        constructions.append({"program": name, "lengths_swept": lengths,
                              "max_exact_length": {dt: r["max_exact_length"] for dt, r in runs.items()},
                              "layers": last["layers"], "heads": last["heads"], "d_model": last["d_model"],
                              "d_mlp": last["d_mlp"], "at_length": lengths[-1],
                              "rows": {dt: r["rows"] for dt, r in runs.items()}})
    result = {"date": datetime.date.today().isoformat(), "constructions": constructions,
              "note": "max_exact_length is the longest swept length with 0 mismatches (addition: digits per "
                      "operand); a construction exact at every swept length may hold further"}
    write_json(path, result)
    return result


def tm_table(result: dict) -> str:
    lines = ["| states | cells | loop layers | loop d_model | loop d_mlp | cot layers | cot d_model | cot d_mlp |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        lo, co = r["loop"], r["cot"]
        lines.append(f"| {r['states']} | {r['cells']} | {lo['layers']} | {lo['d_model']} | {lo['d_mlp']} | "
                     f"{co['layers']} | {co['d_model']} | {co['d_mlp']} |")
    if "cot_long_run" in result:
        r = result["cot_long_run"]
        lines.append(f"\nchain of thought of {r['tokens']} tokens ({r['spec']}, d_model {r['d_model']}): "
                     f"float32 exact: {r['float32']['exact']}, float64 exact: {r['float64']['exact']}")
    for dev in ("cpu", "cuda"):
        if dev in result:
            lines.append(f"\n{dev}: " + ", ".join(
                f"batch {k[6:]}: loop {v['loop_steps_per_s']:,.0f} steps/s, cot {v['cot_tokens_per_s']:,.0f} tokens/s"
                for k, v in result[dev].items()))
    return "\n".join(lines)


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="measure compiled sizes and throughput; writes bench/results/*.json")
    b.add_argument("what", choices=["subleq", "tm", "lengths"], help="which benchmark")
    b.add_argument("--quick", action="store_true", help="small sizes on CPU only (what CI runs)")
    b.add_argument("--out", default="bench/results", help="folder for the JSON results")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--only", help="lengths: comma-separated constructions to sweep again (the rest are kept)")


def cmd_bench(a) -> dict:
    if a.what == "tm":
        return bench_tm(a.quick, a.out)
    if a.what == "lengths":
        return bench_lengths(a.out, [x for x in (a.only or "").split(",") if x] or None)
    return bench_subleq(a.quick, a.out)
