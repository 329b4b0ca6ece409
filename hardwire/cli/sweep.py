"""`hardwire sweep PROG.hw --lengths 8,64,512`: compile at growing lengths and count mismatches."""
from __future__ import annotations

from hardwire.compiler.core.errors import HardwireError


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="compile at growing lengths and count mismatches on random inputs")
    s.add_argument("program")
    s.add_argument("--lengths", required=True, help="comma-separated, e.g. 8,64,512,4096")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--samples", type=int, default=20)
    s.add_argument("--length-param", default="n", help="the param that sets the length (default n)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_sweep(a) -> dict:
    try:
        lengths = [int(x) for x in a.lengths.split(",") if x.strip()]
    except ValueError:
        raise HardwireError(f"--lengths expects comma-separated integers, got {a.lengths!r}") from None
    if not lengths or min(lengths) < 1:
        raise HardwireError("--lengths needs at least one positive length")
    from hardwire.bench.sweep import sweep
    return sweep(a.program, lengths, a.dtype, a.samples, a.length_param, a.device)


def render(info: dict) -> str:
    lines = [f"{info['program']} ({info['dtype']}, against the {info['reference']} reference)",
             "length | mismatches | layers | d_model | d_mlp | seconds"]
    lines += [f"{r['length']} | {r['mismatches']}/{r['samples']} | {r['layers']} | {r['d_model']} | {r['d_mlp']} | "
              f"{r['seconds']}" for r in info["rows"]]
    lines.append(f"longest exact length: {info['max_exact_length']}")
    return "\n".join(lines)
