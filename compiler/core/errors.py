"""The one error type users see: a message that names the place and the fix."""
from __future__ import annotations


class HardwireError(Exception):
    """Bad input (program, tokens, weight file): reported as one line, exit code 2."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None):
        self.message, self.file, self.line, self.column = message, file, line, column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        return f"{where}: {self.message}" if where else self.message
