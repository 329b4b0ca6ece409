"""Decoding bugs: output values that come back from the model as something else (compiler/artifact.py,
runtime/model.py, and value sets in compiler/elaborate.py)."""
import pytest

from tests.regressions.common import check

TUPLE_OUTPUT = """
    vocab {"a", "b"}
    max_len 3
    table t { "a" -> (A, 1), "b" -> (B, 0) }
    output o = t[tokens]
"""


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="artifact.to_json writes tuple values as JSON lists and runtime.model.parse_value never "
                          "turns them back, so a tuple-valued output decodes to lists (`hardwire check` fails it)")
def test_tuple_valued_output() -> None:
    # ["b", "a"]: model [["B", 0], ["A", 1]], interpreter [("B", 0), ("A", 1)]
    check(TUPLE_OUTPUT, [["b", "a"]])


SLASH_STRING = """
    vocab {"1/2", "a"}
    max_len 3
    output o = tokens
"""


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="fractions travel in the weight file as 'a/b' strings and runtime.model.parse_value "
                          "turns every such string into a Fraction, so the string token \"1/2\" decodes as 1/2")
def test_string_that_looks_like_a_fraction() -> None:
    # ["a", "1/2"]: model ["a", Fraction(1, 2)], interpreter ["a", "1/2"]
    check(SLASH_STRING, [["a", "1/2"]])


BOOL_AND_INT = """
    vocab {true, false}
    max_len 2
    output o = min(tokens, indices)
"""


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="value sets are Python sets (elaborate.make_map, sops.sort_values), which merge 0 with "
                          "false and 1 with true; the model decodes the one kept, the interpreter gives the other")
def test_value_set_holding_false_and_zero() -> None:
    # [true, true]: model [false, true], interpreter [0, true]
    check(BOOL_AND_INT, [[True, True], [True, False]])
