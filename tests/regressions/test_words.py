"""Word bugs: heads over selects on words, word constants, `if` on words (compiler/wire.py, wire_words.py, words.py)."""
import pytest

from tests.regressions.common import check

CONST_QUERY = """
    word 6
    vocab word
    max_len 4
    output o = width(select(tokens, 3, ==))
"""
CONST_VALUE = """
    word 4
    vocab word
    max_len 3
    output o = aggregate(select(indices, indices, ==), word(5))
"""


# fixed: width over a select on words, and an aggregate of a constant word, are refused by the checker
@pytest.mark.parametrize("source", [CONST_QUERY, CONST_VALUE],
                         ids=["select-side", "aggregate-value"])
def test_word_constant_read_by_a_head(source: str) -> None:
    check(source, [[1, 3, 3], [3]])


WIDTH_OF_WORD_SELECT = """
    word 4
    vocab word
    max_len 3
    output o = width(select(indices, tokens, ==))
"""


# fixed: the checker refuses width over a select on words (not compiled yet)
def test_width_of_a_select_on_words() -> None:
    # [1, 1, 0]: model [3, 3, 3], interpreter [1, 1, 1]
    check(WIDTH_OF_WORD_SELECT, [[1, 1, 0], [0, 5, 2]])


LATEST_OF_WORD_SELECT = """
    word 2
    vocab word
    max_len 4
    output o = latest(select(tokens, tokens, ==), indices)
"""


# fixed: the checker refused latest/earliest over a select on words; since 2026-12-02 one word `==` select compiles
# (wire_words.pick_columns) and agrees with the interpreter here
def test_latest_of_a_select_on_words() -> None:
    # [1, -2, 0, 1]: model [0, 1, 2, 0], interpreter [3, 1, 2, 3]
    check(LATEST_OF_WORD_SELECT, [[1, -2, 0, 1], [0, 0]])


INT_GUARD = """
    word 4
    vocab word
    max_len {n}
    output o = if indices then tokens else 7
"""


# fixed: guard_of requires a boolean-typed condition
def test_if_on_words_with_an_integer_condition() -> None:
    # [5, -7]: model [7, -7], interpreter [7, 7]
    check(INT_GUARD.format(n=2), [[5, -7], [7, 4]])


# fixed: guard_of requires a boolean-typed condition
def test_if_on_words_with_an_integer_condition_of_one_value() -> None:
    check(INT_GUARD.format(n=1), [[5]])


NEVER_TRUE = """
    word 4
    vocab word
    max_len 3
    output o = if indices < 0 then tokens else 7
"""
NEVER_FALSE = """
    word 4
    vocab word
    max_len 3
    output o = if indices >= 0 then tokens else 7
"""
ALWAYS_NONE = """
    word 4
    vocab {0, 1}
    max_len 3
    c = aggregate(select(indices, indices + 1, ==), tokens == 5)
    output o = if c then word(indices) else 7
"""


# fixed: a constant condition is folded; a none-able one is refused
@pytest.mark.parametrize("source", [NEVER_TRUE, NEVER_FALSE, ALWAYS_NONE], ids=["never-true", "never-false", "none"])
def test_if_on_words_with_a_one_sided_condition(source: str) -> None:
    check(source, [[1, 0, 1]])


NONE_GUARD = """
    word 4
    vocab {0, 1}
    max_len 3
    c = aggregate(select(indices, indices + 1, ==), tokens == 1)
    output o = if c then word(5) else 3
"""


# fixed: a none-able condition is refused (wrap it in default)
def test_if_on_words_with_a_none_condition() -> None:
    # [1, 0, 1]: model [3, 5, 0], interpreter [3, 5, 3] (c is none at the last position)
    check(NONE_GUARD, [[1, 0, 1], [0, 0]])
