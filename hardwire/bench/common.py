"""What every benchmark shares: timing on a device, the H100 roofline, per-pass costs, JSON and table writers."""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

BATCHES = (1, 64, 1024)


# The roofline's peaks: NVIDIA H100 Tensor Core GPU datasheet, H100 SXM5 column: FP32 67 TFLOPS and FP64 34 TFLOPS
# (CUDA cores; PyTorch runs float32 matmuls without TF32 unless asked, so the tensor-core peaks do not apply),
# GPU memory bandwidth 3.35 TB/s (HBM3).
H100 = {"gpu": "NVIDIA H100 SXM5 80GB", "float32_flops_per_s": 67e12, "float64_flops_per_s": 34e12,
        "bytes_per_s": 3.35e12, "source": "NVIDIA H100 Tensor Core GPU datasheet (SXM5): FP32 67 TFLOPS, FP64 34 "
        "TFLOPS, memory bandwidth 3.35 TB/s; float32 matmuls run without TF32 by default, so the CUDA-core peak "
        "applies"}


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
    from hardwire.runtime.fast_cost import cost, pass_plan
    return cost(*pass_plan(model, seq))


def cuda_note() -> dict:
    import torch
    return {"note": f"no CUDA device in this run (torch {torch.__version__}, torch.cuda.is_available() is False); "
                    "run `hardwire bench` on a machine with a GPU to fill this in"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


Column = tuple[str, Callable[[dict], str]]  # a rate table's header, and its cell from one batch row


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
