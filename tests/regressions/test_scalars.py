"""Scalar bugs: linear forms of scalars (compiler/check/scalars.py Affine, compiler/check/elaborate.py outputs)."""

from tests.regressions.common import check

AFFINE_OUTPUT = """
    vocab {0, 1}
    max_len 3
    output o = scalar(tokens) * 2
"""


# fixed: an Affine output is wrapped in a copy map that the identity shortcut leaves alone
def test_output_that_is_a_linear_form_of_scalars() -> None:
    # [1, 0]: interpreter [2, 0]; the compiler raises AttributeError: 'Affine' object has no attribute 'selector'
    check(AFFINE_OUTPUT, [[1, 0], [0, 1, 1]])
