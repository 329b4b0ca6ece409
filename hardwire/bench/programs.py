"""`hardwire bench programs`: every program in programs/ (but the machines, which have their own benches) at its
default size: compiled size and compile time, and throughput at batch 1, 64 and 1024 on the fast paths and on the
plain dense pass, beside the language's interpreter and the plain-Python reference (hardwire/references.py) on the
same inputs in the same run. Inputs are drawn at each program's longest length; a generating program's rate is in
generated tokens, the others' in inputs (one forward pass each). Every run checks that fast, dense, interpreter and
reference agree on every input timed.
"""
from __future__ import annotations

import datetime
import random
import time
from pathlib import Path

from hardwire.bench.common import (
    cpu_name,
    cuda_note,
    fmt,
    pass_cost,
    per_pass,
    roofline,
    synced,
    write_json,
)

PROGRAMS = Path(__file__).resolve().parents[2] / "programs"
MIN_SECONDS = 0.5          # each rate is timed over repeated runs of at least this long (quick: QUICK_SECONDS)
QUICK_SECONDS = 0.02
INTERPRETER_INPUTS = 16    # the interpreter is timed on the first inputs of the batch (quick: 2)


def timed(run, min_s: float, now) -> tuple[float, object]:
    """(seconds per call, last result) of run(), called until min_s has passed (after one warm-up call)."""
    got = run()
    calls, t0 = 0, now()
    while True:
        got = run()
        calls += 1
        dt = now() - t0
        if dt >= min_s:
            return dt / calls, got


def throughput(prog, model, inputs: list, batches, device: str, min_s: float, threads: int | None
               ) -> tuple[dict, list]:
    """Per batch size: fast and dense rates (inputs or generated tokens per second) and whether the two agree;
    and the fast path's results on the largest batch."""
    import torch

    from hardwire.runtime.fast import FastModel
    from hardwire.runtime.generate import generate
    from hardwire.runtime.threads import intra_op_threads
    now = synced(device)
    gen = prog.generate is not None
    out = {}
    for b in batches:
        batch = inputs[:b]
        if gen:
            runs = {"fast": lambda: generate(model, batch, fast=True),
                    "dense": lambda: generate(model, batch, fast=False)}
        else:
            fm = FastModel.of(model)
            runs = {"fast": lambda: fm.run(batch), "dense": lambda: model.run(batch)}
        row, got = {}, {}
        for path, run in runs.items():
            with intra_op_threads(1 if path == "fast" else threads):
                s, got[path] = timed(run, min_s, now)
            units = sum(len(g) for g in got[path]) if gen else b
            row[f"{path}_per_s"] = round(units / s, 1)
        same = got["fast"] == got["dense"]
        row["fast_over_dense"] = round(row["fast_per_s"] / row["dense_per_s"], 2)
        row["fast_equals_dense"] = same
        if not gen:   # the forward passes alone, on ids encoded once: what the model costs without Python around it
            ids, lengths = model.encode(batch)
            forwards = {"fast": lambda: fm.forward(ids, lengths), "dense": lambda: model.forward(ids, lengths)}
            for path, run in forwards.items():
                with torch.no_grad(), intra_op_threads(1 if path == "fast" else threads):
                    s, _ = timed(run, min_s, now)
                row[f"{path}_forward_per_s"] = round(b / s, 1)
        out[f"batch_{b}"] = row
    return out, got["fast"]


def bench_program(name: str, quick: bool, threads: int | None, seed: int = 0) -> dict:
    """One program: sizes, rates per device and batch, the interpreter's and the reference's rates, agreement."""
    import torch

    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.interpret import generate as interpret_generate
    from hardwire.compiler.interpret import run as interpret
    from hardwire.compiler.pipeline import compile_program
    from hardwire.references import REFERENCES, sample
    from hardwire.runtime.generate import generate
    from hardwire.runtime.model import from_compiled
    prog = check_file(str(PROGRAMS / f"{name}.hw"))
    compiled = compile_program(prog)
    model = from_compiled(compiled, "cpu")
    batches = (1, 8) if quick else (1, 64, 1024)
    rng = random.Random(seed)
    inputs = [sample(name, prog, rng) for _ in range(max(batches))]
    gen = prog.generate is not None
    ref = REFERENCES[name]
    min_s = QUICK_SECONDS if quick else MIN_SECONDS
    first = inputs[:2 if quick else INTERPRETER_INPUTS]
    now = synced("cpu")
    s_interp, interp = timed(lambda: [interpret_generate(prog, x) if gen else interpret(prog, x) for x in first],
                             min_s, now)
    s_ref, answers = timed(lambda: [ref.answer(x) for x in inputs], min_s, now)
    model_got = generate(model, first, fast=False) if gen else model.run(first)   # decoded values, typed
    rates, fast_got = throughput(prog, model, inputs, batches, "cpu", min_s, threads)
    units = (lambda rows: sum(len(r) for r in rows)) if gen else len
    result = {"program_params": dict(prog.params), "length": len(inputs[0]), "unit": "tokens" if gen else "inputs",
              **compiled.summary(), "compile_s": compiled.compile_s,
              "interpreter_per_s": round(units(interp) / s_interp, 1),
              "reference_per_s": round((units(answers) if gen else len(inputs)) / s_ref, 1),
              "checked": {"interpreter_equals_reference": all(ref.read(r, x) == a
                                                              for r, x, a in zip(interp, first, answers)),
                          "dense_equals_interpreter": model_got == interp,
                          "fast_equals_reference": all(ref.read(g, x) == a
                                                       for g, x, a in zip(fast_got, inputs, answers)),
                          "interpreter_inputs": len(first), "inputs": len(inputs)},
              "cpu": rates}
    for row in rates.values():
        row["fast_over_interpreter"] = round(row["fast_per_s"] / result["interpreter_per_s"], 1)
        row["fast_over_reference"] = round(row["fast_per_s"] / result["reference_per_s"], 4)
    cost = pass_cost(model, inputs[0])
    result["per_pass"] = per_pass(cost)
    result["roofline_h100"] = roofline(cost, "float32", batches)
    if torch.cuda.is_available():
        cuda_model = from_compiled(compiled, "cuda")
        result["cuda"] = throughput(prog, cuda_model, inputs, batches, "cuda", min_s, None)[0]
    else:
        result["cuda"] = cuda_note()
    checks = [v for v in result["checked"].values() if isinstance(v, bool)]
    result["exact"] = all(checks) and all(row["fast_equals_dense"] for dev in ("cpu", "cuda")
                                          for k, row in result[dev].items() if k.startswith("batch_"))
    return result


def names() -> list[str]:
    from hardwire.references import REFERENCES
    return sorted(REFERENCES)


def bench_programs(quick: bool = False, out_dir: str = "bench/results", threads: int | None = 1,
                   progress=None) -> dict:
    """Every program with a plain-Python reference; writes programs.json (programs_quick.json) and the markdown."""
    import torch
    result = {"date": datetime.date.today().isoformat(), "quick": quick, "torch": torch.__version__,
              "cpu_name": cpu_name(), "device_name": torch.cuda.get_device_name() if torch.cuda.is_available()
              else cpu_name(), "dense_threads": threads, "fast_threads": 1, "programs": {}}
    for name in names():
        t0 = time.perf_counter()
        result["programs"][name] = bench_program(name, quick, threads)
        if progress is not None:
            progress(f"{name}: {time.perf_counter() - t0:.1f} s")
    write_json(Path(out_dir) / ("programs_quick.json" if quick else "programs.json"), result)
    return result


def programs_table(result: dict) -> str:
    """Sizes, then CPU rates (fast and dense per batch, end to end and forward passes alone, interpreter,
    reference, ratios), as markdown."""
    progs = result["programs"]
    lines = ["| program | param | length | layers | heads | d_model | d_mlp | params | non-zero | compile s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in progs.items():
        params = ", ".join(f"{k}={v}" for k, v in r["program_params"].items()) or "-"
        lines.append(f"| {name} | {params} | {r['length']} | {r['layers']} | {r['heads']} | {r['d_model']} | "
                     f"{r['d_mlp']} | {r['params']:,} | {r['nonzero_params']:,} | {r['compile_s']:.3f} |")
    batches = [k for k in next(iter(progs.values()))["cpu"] if k.startswith("batch_")]
    head = " | ".join(f"fast {k[6:]} | dense {k[6:]}" for k in batches)
    big = batches[-1]
    lines += ["", f"cpu ({result['cpu_name']}; per second, all inputs of a batch together; inputs, or generated "
              f"tokens for a generating program; the dense pass on {result['dense_threads']} thread(s), the fast "
              "paths on 1):", "",
              f"| program | unit | {head} | forward only, fast {big[6:]} | forward only, dense {big[6:]} | "
              f"interpreter | reference | fast {big[6:]} / interpreter | fast {big[6:]} / reference | "
              f"H100 bound, fast, batch {big[6:]} | exact |",
              "|---|---|" + "---|" * (2 * len(batches) + 8)]
    for name, r in progs.items():
        cells = " | ".join(f"{fmt(r['cpu'][k]['fast_per_s'])} | {fmt(r['cpu'][k]['dense_per_s'])}" for k in batches)
        roof = r["roofline_h100"]["fast"][big]
        fwd = f"{fmt(r['cpu'][big].get('fast_forward_per_s'))} | {fmt(r['cpu'][big].get('dense_forward_per_s'))}"
        lines.append(f"| {name} | {r['unit']} | {cells} | {fwd} | {fmt(r['interpreter_per_s'], 1)} | "
                     f"{fmt(r['reference_per_s'])} | {fmt(r['cpu'][big]['fast_over_interpreter'], 1)} | "
                     f"{r['cpu'][big]['fast_over_reference']:.4f} | {fmt(roof['max_steps_per_s'])} passes/s "
                     f"({roof['bound']}) | {r['exact']} |")
    note = next(iter(progs.values()))["cuda"].get("note")
    lines.append(f"\ncuda: {note}" if note else "\ncuda: measured; see programs.json")
    return "\n".join(lines)
