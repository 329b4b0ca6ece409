"""Every program: interpreter == plain-Python reference, compiled model == interpreter."""
import random
from functools import cache
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import given
from hypothesis import strategies as st

from hardwire.references import ARITHMETIC, sample
from hardwire.references import LIBRARY as REFERENCES

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


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
    machines = {"subleq", "turing_loop", "turing_cot"}   # machines/subleq/emulator.py, tm.simulate are theirs
    assert {p.stem for p in PROGRAMS.glob("*.hw")} - machines == set(REFERENCES) | set(ARITHMETIC)


@pytest.mark.parametrize("name", sorted(ARITHMETIC))
def test_arithmetic_references(name):
    """Parity and addition at their default sizes: interpreter and model, read back, equal the direct answer
    (a Python int sum, sum(bits) % 2, ...) on the inputs `hardwire bench programs` draws."""
    from hardwire.compiler.interpret import generate as interpret_generate
    from hardwire.runtime.generate import generate
    prog, model = compiled(name)
    ref = ARITHMETIC[name]

    @given(st.integers(0, 2 ** 32))
    def prop(seed):
        x = sample(name, prog, random.Random(seed))
        if prog.generate is not None:
            got, want = generate(model, [x])[0], interpret_generate(prog, x)
        else:
            got, want = model.run([x])[0], run(prog, x)
        assert ref.read(want, x) == ref.answer(x)
        assert ref.read(got, x) == ref.answer(x)
    prop()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_interpreter_matches_reference(name):
    @given(inputs(name))
    def prop(xs):
        prog, _ = compiled(name)
        assert run(prog, xs) == REFERENCES[name].answer(xs)
    prop()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_model_matches_interpreter(name):
    @given(st.lists(inputs(name), min_size=1, max_size=8))
    def prop(batch):
        prog, model = compiled(name)
        got = model.run(batch)
        for xs, g in zip(batch, got):
            assert g == run(prog, xs)
    prop()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_model_at_max_len(name):
    prog, model = compiled(name)
    xs = (list(prog.vocab) * prog.max_len)[:prog.max_len]
    assert model.run([xs])[0] == run(prog, xs)


def test_examples_people_look_up():
    _, model = compiled("reverse")
    assert model.run([["a", "b", "c"]])[0]["reversed"] == ["c", "b", "a"]
    _, model = compiled("sort_unique")
    assert model.run([[5, 1, 3]])[0]["sorted"] == [1, 3, 5]
