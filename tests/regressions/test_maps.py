"""Elementwise bugs: map fusion, value-set sorting, constant folding (compiler/fuse.py, sops.py, elaborate.py)."""
import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError

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


# fixed: fusion leaves scalar maps as their own block (their none -> 0 step stays)
def test_fused_scalar_of_none_into_onehot() -> None:
    check(FUSED_SCALAR_NONE_ONEHOT, [[1, 1, 1]])


# fixed: fusion leaves scalar maps as their own block (their none -> 0 step stays)
def test_fused_scalar_of_none_into_scalar() -> None:
    # [1, 1, 1]: model [9, 9, 9], interpreter [9, 9, 10]
    check(FUSED_SCALAR_NONE_SCALAR, [[1, 1, 1], [0, 1]])


MIXED_TUPLES = """
    vocab {0, 1}
    max_len 3
    table t { 0 -> (A, 1), 1 -> (2, B) }
    output o = t[tokens][0]
"""


# fixed: sort_values orders tuples component by component, by type name then value
def test_table_of_tuples_that_mix_types() -> None:
    check(MIXED_TUPLES, [[0, 1, 0]])


# fixed: constant folding turns ValueError into a located error
def test_division_of_a_string_constant_is_an_error() -> None:
    # an ill-typed program (found by hand, not by the generator): it must be refused with a HardwireError
    with pytest.raises(HardwireError):
        check_source('vocab {"a"}\nmax_len 2\noutput o = "a" / 2\n')
