"""Language bugs found by hand while writing the generator: the checker's meaning differs from docs/language.md.

Model and interpreter agree on these (both use the checker's meaning), so the differential fuzzer cannot
see them; each test states the documented result.
"""
import pytest

from compiler.elaborate import check_source
from compiler.errors import HardwireError
from compiler.interpret import run


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="a lambda body is evaluated with only its own parameters in scope (elaborate.call, map), "
                          "so a nested lambda's `x` is the global x, not the outer parameter")
def test_nested_lambda_sees_the_outer_parameter() -> None:
    prog = check_source("vocab {0, 1}\nmax_len 3\nx = 5\noutput o = map(x -> map(y -> x + y, 1), tokens)\n")
    assert run(prog, [0, 1]) == {"o": [1, 2]}  # gives [6, 6]: 5 + 1


@pytest.mark.xfail(strict=True, raises=HardwireError,
                   reason="in a lambda body min/max/abs call Python's function on the raw values (elaborate.call), "
                          "so a none from a table fails the check instead of propagating as documented")
def test_min_of_none_in_a_lambda_is_none() -> None:
    prog = check_source("vocab {0, 1}\nmax_len 3\ntable t { 0 -> 4 }\noutput o = map(x -> min(t[x], 1), tokens)\n")
    assert run(prog, [0, 1]) == {"o": [1, None]}


@pytest.mark.xfail(strict=True, raises=HardwireError,
                   reason="docs/language.md gives map((t, i) -> (t, i), tokens, indices) as an injective map, but "
                          "the grammar has no tuple expressions: a syntax error")
def test_documented_tuple_lambda_parses() -> None:
    check_source("vocab {0, 1}\nmax_len 3\noutput o = map((t, i) -> (t, i), tokens, indices)\n")
