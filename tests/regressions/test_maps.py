"""Elementwise bugs: map fusion, value-set sorting, constant folding (compiler/fuse.py, sops.py, elaborate.py)."""
import pytest

from compiler.elaborate import check_source
from compiler.errors import HardwireError
from tests.regressions.common import check

FUSED_SCALAR_NONE_ONEHOT = """
    vocab {0, 1}
    max_len 3
    n = aggregate(select(indices, indices + 1, ==), tokens)
    output o = onehot(scalar(n))
"""
FUSED_SCALAR_NONE_SCALAR = """
    vocab {0, 1}
    max_len 3
    n = aggregate(select(indices, indices + 1, ==), tokens)
    output o = map(x -> 10 - x, scalar(n))
"""


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="fuse.fuse_maps composes scalar(n) into its reader without the none -> 0 of the scalar "
                          "encoding; the fused lookup meets none, which the one-hot output has no dimension for")
def test_fused_scalar_of_none_into_onehot() -> None:
    check(FUSED_SCALAR_NONE_ONEHOT, [[1, 1, 1]])


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="fuse.fuse_maps composes scalar(n) into its reader without the none -> 0 of the scalar "
                          "encoding; the fused map gives none (written as 0) where the interpreter computes 10 - 0")
def test_fused_scalar_of_none_into_scalar() -> None:
    # [1, 1, 1]: model [9, 9, 9], interpreter [9, 9, 10]
    check(FUSED_SCALAR_NONE_SCALAR, [[1, 1, 1], [0, 1]])


MIXED_TUPLES = """
    vocab {0, 1}
    max_len 3
    table t { 0 -> (A, 1), 1 -> (2, B) }
    output o = t[tokens][0]
"""


@pytest.mark.xfail(strict=True, raises=TypeError,
                   reason="sops.sort_values orders tuples by their contents, and (A, 1) < (2, B) compares a string "
                          "with an int: the checker crashes with TypeError instead of accepting or refusing")
def test_table_of_tuples_that_mix_types() -> None:
    check(MIXED_TUPLES, [[0, 1, 0]])


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="elaborate.apply folds constants catching ZeroDivisionError and TypeError only; "
                          "Fraction('a') raises ValueError, a traceback instead of a file:line:column error")
def test_division_of_a_string_constant_is_an_error() -> None:
    # an ill-typed program (found by hand, not by the generator): it must be refused with a HardwireError
    with pytest.raises(HardwireError):
        check_source('vocab {"a"}\nmax_len 2\noutput o = "a" / 2\n')
