"""Selector bugs: which keys a select matches (compiler/wire.py score_columns, compiler/check/elaborate.py)."""
import pytest

from tests.regressions.common import check

SCALAR_KEYS = """
    vocab {0, 1, 2}
    max_len 4
    output o = width(select(scalar(tokens), indices, ==))
"""
SCALAR_QUERIES = """
    vocab {0, 1, 2}
    max_len 4
    output o = width(select(indices, scalar(tokens), ==))
"""


# fixed: the checker refused a select on scalars; since issue 19 a scalar key or query is made one-hot for the head
@pytest.mark.parametrize("source", [SCALAR_KEYS, SCALAR_QUERIES], ids=["keys", "queries"])
def test_select_on_a_scalar(source: str) -> None:
    # [1, 0, 1, 2]: model [4, 0, 0, 0] (keys) / [1, 0, 1, 4] (queries), interpreter [1, 2, 1, 0] / [1, 1, 1, 1]
    check(source, [[1, 0, 1, 2], [2, 2, 0]])


NONE_KEY_TRUE = """
    vocab {0, 1}
    max_len 4
    a = aggregate(select(indices, indices + 1, ==), tokens)
    output o = width(select(a, 0, true))
"""
NONE_KEY_NOT = """
    vocab {0, 1}
    max_len 4
    a = aggregate(select(indices, indices + 1, ==), tokens)
    output o = width(!select(a, 0, ==))
"""
NONE_KEY_MEAN = """
    vocab {0, 1}
    max_len 4
    a = aggregate(select(indices, indices + 1, ==), tokens)
    output o = aggregate(select(a, 0, true), scalar(tokens))
"""


# fixed: a score column for a none key subtracts BOS, which is none too
@pytest.mark.parametrize("source", [NONE_KEY_TRUE, NONE_KEY_NOT, NONE_KEY_MEAN], ids=["true", "not", "mean"])
def test_selector_that_holds_on_a_none_key(source: str) -> None:
    # [1, 0, 1, 1]: model [0, 0, 0, 0], interpreter [4, 4, 4, 4] / [3, 3, 3, 3] / [3/4, 3/4, 3/4, 3/4]
    check(source, [[1, 0, 1, 1], [0, 0]])


RANK_OVER_NONE = """
    vocab {0, 1, 2}
    max_len 3
    table t { 0 -> 5, 1 -> 3 }
    k = t[indices]
    r = width(select(k, k, <))
    output o = aggregate(select(r, indices, ==), tokens)
"""
RANK_OVER_MIXED = """
    vocab {0, 1, 2}
    max_len 3
    k = map(i -> if i == 0 then "a" else i, indices)
    r = width(select(k, k, >))
    output o = aggregate(select(r, indices, ==), tokens)
"""


# fixed: a rank is unique only over keys of one comparable type, never none
@pytest.mark.parametrize("source", [RANK_OVER_NONE, RANK_OVER_MIXED], ids=["none", "mixed-types"])
def test_rank_of_keys_that_do_not_compare(source: str) -> None:
    # the checker accepts the one-hot aggregate; the interpreter then raises "selects several different values"
    check(source, [[0, 1, 2], [1, 0]])
