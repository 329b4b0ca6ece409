"""Every program: interpreter == plain-Python reference, compiled model == interpreter."""
from fractions import Fraction
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.artifact import compile_program
from compiler.elaborate import check_file
from compiler.interpret import run
from runtime.model import from_compiled, parse_value

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


def dyck1(xs):
    out, depth, ok = [], 0, True
    for t in xs:
        depth += 1 if t == "(" else -1
        ok = ok and depth >= 0
        out.append(ok and depth == 0)
    return {"balanced": out}


def dyck2(xs):
    out, r, q, ok = [], 0, 0, True
    for t in xs:
        r += {"(": 1, ")": -1}.get(t, 0)
        q += {"[": 1, "]": -1}.get(t, 0)
        ok = ok and r >= 0 and q >= 0
        out.append(ok and r == 0 and q == 0)
    return {"balanced": out}


def pair_balance(xs):
    return {"balance": [Fraction(xs[:i + 1].count("(") - xs[:i + 1].count(")"), i + 1) for i in range(len(xs))]}


REFERENCES = {
    "dyck2": dyck2,
    "pair_balance": pair_balance,
    "sort": lambda xs: {"sorted": sorted(xs)},
    "caesar": lambda xs: {"shifted": [chr((ord(t) - ord("a") + 1) % 4 + ord("a")) for t in xs]},
    "parity_count": lambda xs: {"parity": [sum(xs[:i + 1]) % 2 for i in range(len(xs))]},
    "length": lambda xs: {"len": [len(xs)] * len(xs)},
    "reverse": lambda xs: {"reversed": xs[::-1]},
    "histogram": lambda xs: {"hist": [xs.count(t) for t in xs]},
    "sort_unique": lambda xs: {"sorted": sorted(xs)},
    "frac_prevs": lambda xs: {"frac": [Fraction(xs[:i + 1].count("x"), i + 1) for i in range(len(xs))]},
    "dyck1": dyck1,
}


@cache
def compiled(name):
    prog = check_file(str(PROGRAMS / f"{name}.hw"))
    return prog, from_compiled(compile_program(prog), "cpu")


def inputs(name):
    prog, _ = compiled(name)
    vocab = list(prog.vocab)
    if prog.distinct:
        return st.permutations(vocab).flatmap(lambda p: st.integers(1, len(p)).map(lambda n: list(p[:n])))
    return st.lists(st.sampled_from(vocab), min_size=1, max_size=prog.max_len)


def test_every_program_has_a_reference():
    own_tests = {"subleq", "turing_loop", "turing_cot", "add_lsb", "add_cot", "add_msb", "parity_cot", "parity_cc"}
    assert {p.stem for p in PROGRAMS.glob("*.hw")} - own_tests == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_interpreter_matches_reference(name):
    @given(inputs(name))
    def prop(xs):
        prog, _ = compiled(name)
        assert run(prog, xs) == REFERENCES[name](xs)
    prop()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_model_matches_interpreter(name):
    @given(st.lists(inputs(name), min_size=1, max_size=8))
    def prop(batch):
        prog, model = compiled(name)
        got = model.run(batch)
        for xs, g in zip(batch, got):
            assert {k: [parse_value(v) for v in vs] for k, vs in g.items()} == run(prog, xs)
    prop()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_model_at_max_len(name):
    prog, model = compiled(name)
    xs = (list(prog.vocab) * prog.max_len)[:prog.max_len]
    assert {k: [parse_value(v) for v in vs] for k, vs in model.run([xs])[0].items()} == run(prog, xs)


def test_examples_people_look_up():
    _, model = compiled("reverse")
    assert model.run([["a", "b", "c"]])[0]["reversed"] == ["c", "b", "a"]
    _, model = compiled("sort_unique")
    assert model.run([[5, 1, 3]])[0]["sorted"] == [1, 3, 5]
