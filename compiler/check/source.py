"""Reading a source file (a program, a SUBLEQ image): a missing file or bad bytes are one error naming the place."""
from __future__ import annotations

from hardwire.compiler.core.errors import HardwireError


def read_text(path: str) -> str:
    """Read a UTF-8 source file, reporting a missing/unreadable file or bad bytes as HardwireError."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise HardwireError(f"cannot read file: {e.strerror}", path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise HardwireError(f"file is not UTF-8 text (byte 0x{raw[e.start]:02x})", path, line, column) from None
