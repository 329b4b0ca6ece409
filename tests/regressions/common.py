"""The check every regression runs: a program is refused cleanly, or its model agrees with the interpreter."""
from __future__ import annotations

import textwrap

from tests.fuzz_programs import assert_agrees, compiled


def check(source: str, batch: list[list]) -> None:
    """Refusing the program (HardwireError) is a fix; compiling it into a model that disagrees is not.

    A crash of the compiler, or of the interpreter on a program the checker accepted, propagates.
    """
    built = compiled(textwrap.dedent(source))
    if built is not None:
        assert_agrees(*built, batch)
