"""The SUBLEQ computer's program (programs/subleq.hw) and the widest word float32 holds exactly."""
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
