"""Linear scalar arithmetic (Affine, no block), maps over one scalar and one-hot inputs, exact means."""
from fractions import Fraction

import pytest
from hardwire.compiler.check.elaborate import Elaborator, check_source
from hardwire.compiler.check.scalars import frac_gcd, progression
from hardwire.compiler.core.sops import SCALAR, Map
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings
from hypothesis import strategies as st

HEAD = "program s\nvocab {0, 1, 2}\nmax_len 6\n"


@given(a=st.integers(-3, 3), b=st.integers(-3, 3), c=st.integers(1, 4), cut=st.integers(-4, 4),
       xs=st.lists(st.integers(0, 2), min_size=1, max_size=6))
@settings(max_examples=40)
def test_affine_and_gated_maps_match_the_interpreter(a, b, c, cut, xs):
    src = HEAD + (f"m = aggregate(select(indices, indices, <=), scalar(tokens))\n"
                  f"p = scalar(indices) / {c}\n"
                  f"lin = {a} * m - p + {b}\n"
                  f"output stair = map((d, t) -> if d > {cut} / 2 then t else 0 - t, lin, tokens)\n"
                  f"output mean = aggregate(select(tokens, tokens, ==), lin)\n")
    prog = check_source(src)
    model = from_compiled(compile_program(prog), "cpu")
    got = model.run([xs])[0]
    assert got == run(prog, xs)


def test_affine_needs_no_block():
    prog = check_source(HEAD + "m = aggregate(select(indices, indices, <=), scalar(tokens))\n"
                        "output o = map(d -> d > 0, m - scalar(indices) / 6)\n")
    summary = compile_program(prog).summary()
    assert summary["layers"] == 1  # the head, then one MLP reading m - i/6 as a linear form


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=5, unique=True).map(sorted),
       st.lists(st.integers(-5, 5), min_size=1, max_size=5, unique=True).map(sorted),
       st.integers(-3, 3).filter(bool), st.integers(-3, 3).filter(bool))
def test_affine_values_cover_every_combination(xs, ys, cx, cy):
    """The value set is exact when enumerated; the progression path returns a superset (checked here too)."""
    e = Elaborator("", "<t>", None)
    x = Map("x", tuple(xs), SCALAR)
    y = Map("y", tuple(ys), SCALAR)
    got = set(e.affine_values(((Fraction(cx), x), (Fraction(cy), y)), Fraction(1, 2), None))
    assert got == {cx * a + cy * b + Fraction(1, 2) for a in xs for b in ys}


def test_progressions_and_gcd():
    assert progression((0, Fraction(1, 3), Fraction(2, 3))) == Fraction(1, 3)
    assert progression((0, 1, 3)) is None
    assert frac_gcd([Fraction(1, 2), Fraction(1, 3)]) == Fraction(1, 6)


def test_long_grids_use_the_progression_path():
    n = 5000
    prog = check_source(f"program g\nvocab {{0, 1}}\nmax_len {n}\nexact_len\n"
                        "ones = aggregate(select(tokens, tokens, true), scalar(tokens))\n"
                        f"output o = map(d -> d > 0, ones - scalar(indices) / {n})\n")
    d = prog.outputs["o"].inputs[0]
    assert len(d.values) == 2 * n and d.values[0] == Fraction(-(n - 1), n)


def test_two_scalar_inputs_are_refused_when_compiled():
    from hardwire.compiler.core.errors import HardwireError
    prog = check_source(HEAD + "x = scalar(tokens)\ny = aggregate(select(indices, indices, <=), x)\n"
                        "output o = map((a, b) -> a * b, x, y)\n")
    with pytest.raises(HardwireError, match="several scalar inputs"):
        compile_program(prog)
