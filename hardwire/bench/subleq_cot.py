"""The trace-mode SUBLEQ's rate by memory size (`hardwire bench subleq --only cot`, the `trace_mode` entry of
bench/results/subleq.json): instructions per second of `generate(..., attention="index")` at 256, 4,096 and 65,536
words, batch 1, 64 and 1024 (where its tables fit in memory), `hardwire subleq --mode cot` itself over 300,000
instructions in a fresh process, and the loop mode's fast path where one pass over the memory is feasible. Every
run is checked against the emulator, token for token; the sizes show that nothing grows with mem but the word
width."""
from __future__ import annotations

import datetime
import time

from hardwire.machines.subleq.program import counter_image

MEMS = ((256, 16), (4096, 16), (65_536, 17))   # (mem, bits): 65,536 words need 17-bit addresses
QUICK_MEMS = ((64, 8),)
LOOP_MAX_MEM = 4096   # the loop mode's pass holds every word: past this, a run of the same steps takes minutes


def trace_model(mem: int, bits: int, max_len: int):
    """The compiled trace-mode model in float64 and its compile's sizes."""
    import torch

    from hardwire.cache import cached_source
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.subleq import cot
    from hardwire.runtime.model import from_compiled
    compiled = compile_program(check_file(str(cached_source("subleq_cot", cot.cot_program(mem, bits, max_len))), {}),
                               positions="formula")
    return from_compiled(compiled, "cpu", torch.float64), compiled.summary()


def trace_rate(mem: int, bits: int, batch: int, steps: int, kernel: str | None = None) -> dict:
    """Instructions per second of the trace mode on `batch` counter machines (counter_image, which never halts and
    writes the top of memory), each row's tokens compared with the emulator's trace. kernel: the index decoder's
    (None: native where numba runs it, as `hardwire subleq --mode cot` decodes; "torch": tensor operations)."""
    from hardwire.machines.subleq import cot
    from hardwire.runtime.generate import generate
    from hardwire.runtime.index_attention import Refusal, derive
    from hardwire.runtime.index_decode import native_why_not
    from hardwire.runtime.memory import budget_bytes, gigabytes, index_bytes
    image = counter_image(mem)
    prompt = cot.prompt(image, bits)
    need = len(prompt) + 3 * steps
    model, size = trace_model(mem, bits, cot.max_len_for(len(prompt), steps))
    est = batch * index_bytes(model, len(prompt))
    if est > budget_bytes():
        return {"batch": batch, "steps": steps, "skipped": f"the heads' tables of {batch} rows (mem + 1 slots per "
                f"memory head, per row) would take about {gigabytes(est)}, more than this run may use"}
    t0 = time.perf_counter()
    rules = derive(model)
    prove_s = time.perf_counter() - t0
    used = kernel or ("native" if native_why_not(model) is None else "torch")
    generate(model, [prompt], max_len=len(prompt) + 3, attention="index", kernel=kernel)   # numba's compile
    t0 = time.perf_counter()
    got = generate(model, [prompt] * batch, max_len=need, attention="index", kernel=kernel)
    run_s = time.perf_counter() - t0
    want = cot.trace_tokens(image, mem, bits, steps)
    return {"batch": batch, "steps": steps, "kernel": used, "instructions_per_s": round(batch * steps / run_s, 1),
            "seconds": round(run_s, 3), "prove_s": round(prove_s, 3), "exact": all(g == want for g in got),
            "proven_heads": sum(not isinstance(r, Refusal) for r in rules), "heads": len(rules),
            "dtype": "float64", "max_len": model.config["max_len"], "prompt_tokens": len(prompt),
            "sizes": {k: size[k] for k in ("layers", "heads", "d_model", "d_mlp", "params") if k in size}}


def cli_rate(mem: int, bits: int, steps: int) -> dict:
    """`hardwire subleq COUNTER --mode cot` end to end in a fresh process (the counter image written to a file):
    its own rate (steps over its run, prefill and decoding included) and the steps over the whole wall time
    (start-up, compile and proof included), checked against the emulator by the command itself."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / f"counter{mem}.sq"
        image.write_text(" ".join(map(str, counter_image(mem))) + "\n")
        cmd = ["hardwire", "subleq", str(image), "--mode", "cot", "--mem", str(mem), "--bits", str(bits),
               "--max-steps", str(steps), "--json"]
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "hardwire", *cmd[1:]], capture_output=True, text=True)
        wall = time.perf_counter() - t0
    out = {"command": " ".join(cmd).replace(str(image), f"counter{mem}.sq"), "returncode": done.returncode,
           "wall_s": round(wall, 2)}
    if done.returncode in (0, 3):   # 3: the step limit, as expected of a counter that never halts
        got = json.loads(done.stdout)
        out.update({k: got[k] for k in ("steps", "run_s", "steps_per_s", "matches_reference", "kernel", "prove_s")},
                   steps_per_wall_s=round(got["steps"] / wall, 1))
    else:
        out["stderr"] = done.stderr[-1000:]
    return out


def loop_rate(mem: int, bits: int, steps: int) -> dict:
    """The loop mode's fast path on the same machine at batch 1 (float32 where it holds), checked likewise."""
    import torch

    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.machines.subleq import emulator as subleq_ref
    from hardwire.machines.subleq.program import FLOAT32_MAX_BITS, program_path
    from hardwire.runtime.fast_loop import run_loop_fast
    from hardwire.runtime.model import from_compiled
    dtype = torch.float32 if bits <= FLOAT32_MAX_BITS else torch.float64
    model = from_compiled(compile_program(check_file(program_path(), {"mem": mem, "bits": bits})), "cpu", dtype)
    image = counter_image(mem)
    t0 = time.perf_counter()
    got = run_loop_fast(model, [image], max_steps=steps)[0]
    run_s = time.perf_counter() - t0
    want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=steps)
    return {"batch": 1, "steps": steps, "instructions_per_s": round(steps / run_s, 1), "seconds": round(run_s, 3),
            "exact": got.outputs["memory"] == want.mem and got.steps == steps,
            "dtype": str(dtype).replace("torch.", "")}


def bench_trace(quick: bool = False) -> dict:
    """The trace mode's rates per memory size, at batch 1, 64 and 1024, with the loop mode beside it up to
    LOOP_MAX_MEM."""
    import os

    import torch
    out: dict = {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "quick": quick,
                 "load_average_1min": round(os.getloadavg()[0], 2),   # the CPU is shared: how busy it was
                 "workload": "counter_image: a counter at the top of memory that never halts; every instruction is "
                             "three generated tokens, decoded with attention='index'", "by_mem": {}}
    steps1, steps64, steps1024 = (60, 10, 2) if quick else (2000, 200, 20)
    for mem, bits in (QUICK_MEMS if quick else MEMS):
        row: dict = {"bits": bits, "batch_1": trace_rate(mem, bits, 1, steps1),
                     "batch_64": trace_rate(mem, bits, 64, steps64),
                     "batch_1024": trace_rate(mem, bits, 1024, steps1024),
                     "torch_batch_1": trace_rate(mem, bits, 1, steps1 // 4, "torch"),
                     "cli_batch_1": cli_rate(mem, bits, 3_000 if quick else 300_000)}
        if mem <= LOOP_MAX_MEM:
            row["loop_fast_batch_1"] = loop_rate(mem, bits, 300 if not quick else 20)
        else:
            row["loop_fast_batch_1"] = {"skipped": f"one loop pass computes all {mem} positions; the trace mode's "
                                                   "step does not depend on mem"}
        out["by_mem"][str(mem)] = row
    return out


def trace_table(t: dict) -> list[str]:
    """The trace mode's rates as markdown lines."""
    lines = ["\n| mem | bits | trace, batch 1 | trace, batch 64 | trace, batch 1024 | `hardwire subleq --mode cot` "
             "(its run; whole wall) | trace (torch kernel), batch 1 | loop fast, batch 1 | layers | heads | d_model | "
             "params (max_len) | exact |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def rate(x: dict) -> str:
        return "skipped" if "skipped" in x else format(x["instructions_per_s"], ",.0f")
    for mem, r in t["by_mem"].items():
        b1, b64, lp = r["batch_1"], r["batch_64"], r["loop_fast_batch_1"]
        b1024, tb = r.get("batch_1024", {"skipped": ""}), r.get("torch_batch_1", {})
        cli = r.get("cli_batch_1", {})
        cli_cell = (f"{cli['steps_per_s']:,.0f}; {cli['steps_per_wall_s']:,.0f} ({cli['steps']:,} steps)"
                    if "steps_per_s" in cli else "not run")
        exact = all(x.get("exact", True) for x in (b1, b64, b1024, tb, lp)) and cli.get("matches_reference", True)
        s = b1["sizes"]
        lines.append(f"| {int(mem):,} | {r['bits']} | {b1['instructions_per_s']:,.0f} ({b1.get('kernel', '')}) | "
                     f"{rate(b64)} | {rate(b1024)} | {cli_cell} | {tb.get('instructions_per_s', 0):,.0f} | "
                     f"{rate(lp)} | "
                     f"{s.get('layers')} | {s.get('heads')} | {s.get('d_model')} | {s.get('params', 0):,} "
                     f"({b1['max_len']}) | {exact} |")
    return lines
