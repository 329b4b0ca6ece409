"""The language's elementwise primitives: functions of values that compile as an exact lookup (a map) over the
value sets and that the interpreter evaluates directly. A new one is one entry here (docs/architecture.md)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Primitive:
    fn: Callable
    min_args: int
    max_args: int | None  # None: any number from min_args on
    arity: str            # said in the error when the count is wrong

    def takes(self, n: int) -> bool:
        return n >= self.min_args and (self.max_args is None or n <= self.max_args)


ELEMENTWISE: dict[str, Primitive] = {
    "min": Primitive(min, 2, None, "two or more values"),
    "max": Primitive(max, 2, None, "two or more values"),
    "abs": Primitive(abs, 1, 1, "one value"),
}
