"""Language bugs found by hand while writing the generator: the checker's meaning differed from docs/language.md.

Model and interpreter agree on these (both use the checker's meaning), so the differential fuzzer cannot
see them; each test states the documented result. All three are fixed (compiler/check/elaborate.py, grammar.lark).
"""
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.interpret import run

from tests.regressions.common import check


# fixed: a lambda body is evaluated with the enclosing lambdas' parameters in scope (elaborate.call, map)
def test_nested_lambda_sees_the_outer_parameter() -> None:
    prog = check_source("vocab {0, 1}\nmax_len 3\nx = 5\noutput o = map(x -> map(y -> x + y, 1), tokens)\n")
    assert run(prog, [0, 1]) == {"o": [1, 2]}  # gave [6, 6]: 5 + 1


# fixed: min/max/abs on a lambda's plain values are lifted over none, as every elementwise function is
def test_min_of_none_in_a_lambda_is_none() -> None:
    prog = check_source("vocab {0, 1}\nmax_len 3\ntable t { 0 -> 4 }\noutput o = map(x -> min(t[x], 1), tokens)\n")
    assert run(prog, [0, 1]) == {"o": [1, None]}


# fixed: tuple expressions `(a, b, ...)` (grammar.lark tuple_expr; a lambda's parameters parse as an expression)
def test_documented_tuple_lambda_parses() -> None:
    source = "vocab {0, 1}\nmax_len 3\noutput o = map((t, i) -> (t, i), tokens, indices)\n"
    assert run(check_source(source), [1, 0]) == {"o": [(1, 0), (0, 1)]}
    check(source, [[1, 0], [0, 0, 1]])


def test_tuple_expressions() -> None:
    # a tuple of sequences is a map, injective when a component is; none in a component makes it none
    source = """
        vocab {0, 1}
        max_len 3
        pair = (tokens, indices)
        output same = aggregate(select(pair, (tokens, indices), ==), tokens)
        output nested = map(x -> (x, (x, 2)), tokens)[1]
        output prev = (aggregate(select(indices, indices - 1, ==), tokens), 1)
        output const = (1, "a")
    """
    assert run(check_source(source), [1, 0]) == {"same": [1, 0], "nested": [(1, 2), (0, 2)],
                                                  "prev": [None, (1, 1)], "const": [(1, "a"), (1, "a")]}
    check(source, [[1, 0], [0, 0, 1]])


def test_table_as_an_output_is_refused() -> None:
    # found by tests/test_parser_fuzz.py while adding typed values: a table output reached the header encoder
    import pytest
    from hardwire.compiler.core.errors import HardwireError
    with pytest.raises(HardwireError, match="not a table"):
        check_source("vocab {0, 1}\nmax_len 3\ntable x { 0 -> 0, }\noutput o = x\n")
