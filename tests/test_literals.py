"""Negative and fraction literals in `vocab` and tables (`-3`, `1/3`, `-1/8`): parsed to the values they name,
compiled exactly, and read back from the command line's inputs."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hypothesis import given
from hypothesis import strategies as st

import hardwire
from hardwire.harness import parse_input

SIGNED = """program signed
vocab {-2, -1, 0, 1/2, 3/2}
max_len 4
table weight { -2 -> -1/8, -1 -> 1/3, 0 -> 0, 1/2 -> -3, 3/2 -> 2 }
output w = weight[tokens]
output doubled = tokens * 2
"""


def test_vocab_and_table_hold_negative_and_fraction_literals():
    prog = check_source(SIGNED)
    assert prog.vocab == (-2, -1, 0, Fraction(1, 2), Fraction(3, 2))
    assert set(prog.outputs["w"].values) == {Fraction(-1, 8), Fraction(1, 3), 0, -3, 2}
    m = hardwire.compile_source(SIGNED, device="cpu")
    got = m([-2, Fraction(1, 2), -1, Fraction(3, 2)])["outputs"]
    assert got == {"w": [Fraction(-1, 8), -3, Fraction(1, 3), 2], "doubled": [-4, 1, -2, 3]}
    assert m("-2 1/2 -1 3/2") == m([-2, Fraction(1, 2), -1, Fraction(3, 2)])
    assert m.check(samples=40).mismatches == 0


def test_a_whole_fraction_is_its_integer():
    prog = check_source("program p\nvocab {4/2, 1}\nmax_len 2\ntable t { 6/3 -> -0/5 }\noutput y = t[tokens]\n")
    assert prog.vocab == (2, 1) and isinstance(prog.vocab[0], int)
    assert prog.outputs["y"].values == (None, 0)


def test_a_fraction_over_zero_is_refused():
    with pytest.raises(HardwireError, match=r"<input>:2:11: the fraction 1/0 divides by zero"):
        check_source("program p\nvocab {0, 1/0}\nmax_len 2\noutput y = tokens\n")


def test_fraction_tokens_are_read_only_where_the_vocab_holds_them():
    assert parse_input("1/3 -1/8 2", [{"frac": "1/3"}, {"frac": "-1/8"}, 2]) == [Fraction(1, 3), Fraction(-1, 8), 2]
    assert parse_input("1/3", ["1/3"]) == ["1/3"]   # a string vocab keeps the string


fractions = st.fractions(min_value=-5, max_value=5, max_denominator=9)


@given(st.lists(st.tuples(fractions, fractions), min_size=1, max_size=6, unique_by=lambda kv: kv[0]))
def test_a_table_of_fractions_is_looked_up_exactly(pairs):
    """Any table of signed fractions over a vocab of its keys: the weights give each key's value."""
    def lit(v: Fraction) -> str:
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    keys = ", ".join(lit(k) for k, _ in pairs)
    body = ", ".join(f"{lit(k)} -> {lit(v)}" for k, v in pairs)
    m = hardwire.compile_source(f"program f\nvocab {{{keys}}}\nmax_len 3\ntable t {{ {body} }}\noutput y = t[tokens]\n",
                                device="cpu")
    xs = [int(k) if k.denominator == 1 else k for k, _ in pairs][:3]   # a whole token is an integer
    assert m(xs)["outputs"]["y"] == [dict(pairs)[k] for k in xs]
