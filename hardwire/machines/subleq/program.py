"""The SUBLEQ computer's program (programs/subleq.hw), the widest word float32 holds exactly, and the benches'
workload: an image that never halts."""
from __future__ import annotations

from pathlib import Path

from hardwire.compiler.core.errors import HardwireError

FLOAT32_MAX_BITS = 20  # float32 is exact through 20-bit words, float64 through 49 (docs/subleq.md, "Precision";
#                         compiler/precision.py derives both from the weights)


def program_path() -> str:
    path = Path(__file__).resolve().parents[3] / "programs" / "subleq.hw"
    if not path.exists():
        raise HardwireError("programs/subleq.hw is missing; run hardwire from a source checkout (pip install -e .)")
    return str(path)


def counter_image(mem: int) -> list[int]:
    """A program that never halts: mem[mem-1] counts up forever (0: sub; 3: clear a scratch word, jump 0)."""
    image = [mem - 2, mem - 1, 0, mem - 3, mem - 3, 0] + [0] * (mem - 6)
    image[mem - 2] = -1
    return image
