"""The one error type users see: a message that names the place and the fix."""
from __future__ import annotations


class HardwireError(Exception):
    """Bad input (program, tokens, weight file): reported as one line, exit code 2."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None):
        self.message, self.file, self.line, self.column = message, file, line, column
        self.source_line: str | None = None  # the program's line at `line`, when known (for the caret excerpt)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)
        return f"{where}: {self.message}" if where else self.message

    def excerpt(self) -> str:
        """The offending source line and a caret under the column (tabs kept, so the caret lines up), or ''."""
        if self.source_line is None or self.column is None:
            return ""
        pad = "".join("\t" if c == "\t" else " " for c in self.source_line[:self.column - 1])
        return f"  {self.source_line}\n  {pad}^"
