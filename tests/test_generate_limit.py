"""Generation stops at max_len (a prompt of max_len tokens generates nothing), and `check` compares the tokens
a generating program generates, not only its outputs at the prompt's positions (issue 17, faults)."""
from functools import lru_cache
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import generate as interpret_generate
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime import generate as gen
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.harness import compare

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
GENERATING = {"add_cot": {"n": 2, "bits": 5}, "parity_cot": {"n": 3, "bits": 5}, "turing_cot": {}}


@lru_cache(maxsize=None)
def compiled(name: str):
    """The checked program and its float32 model on the CPU, compiled once per test session."""
    prog = check_file(str(PROGRAMS / f"{name}.hw"), GENERATING[name])
    return prog, from_compiled(compile_program(prog), "cpu")


@st.composite
def prompts(draw):
    """A generating program and a prompt of its vocabulary, of max_len tokens half the time."""
    name = draw(st.sampled_from(sorted(GENERATING)))
    prog, _ = compiled(name)
    full = draw(st.booleans())
    n = prog.max_len if full else draw(st.integers(1, prog.max_len))
    vocab = list(prog.vocab)
    return name, [draw(st.sampled_from(vocab)) for _ in range(n)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts(), st.booleans())
def test_generated_tokens_equal_the_interpreters(case, fast):
    name, prompt = case
    prog, model = compiled(name)
    got = gen.generate(model, [prompt], fast=fast)[0]
    assert got == interpret_generate(prog, prompt)
    assert len(prompt) + len(got) <= prog.max_len


@pytest.mark.parametrize("name", sorted(GENERATING))
@pytest.mark.parametrize("fast", [False, True])
def test_a_prompt_of_max_len_generates_nothing(name, fast):
    prog, model = compiled(name)
    prompt = [list(prog.vocab)[0]] * prog.max_len
    assert gen.generate(model, [prompt, prompt[:-1]], fast=fast)[0] == []
    assert len(gen.generate(model, [prompt[:-1]], fast=fast)[0]) <= 1


@pytest.mark.parametrize("decoder", [{"fast": False}, {"fast": True}, {"attention": "index", "kernel": "torch"},
                                     {"attention": "index"}])
def test_a_max_len_below_a_prompt_generates_nothing_for_it(decoder):
    """generate(max_len=k) with prompts longer than k: those generate nothing, the shorter ones decode as if alone
    (every decoder used to size its caches by k and fail on the longer prompt)."""
    prog, model = compiled("parity_cot")
    long, short = [0, 1, 1, 0, 1], [1, 0]
    got = gen.generate(model, [long, short, long], max_len=4, **decoder)
    assert got[0] == got[2] == [] and got[1] == gen.generate(model, [short], max_len=4, fast=False)[0]
    assert len(short) + len(got[1]) <= 4


def test_check_compares_generated_tokens(monkeypatch):
    """check finds a decoder that appends one token too many; with the decoder as it is, 0 mismatches."""
    prog, model = compiled("parity_cot")
    assert compare(prog, model, 30, seed=3)["mismatches"] == 0
    real = gen.record

    def one_too_many(model, vals, out, active, pos, stop, limit):
        return real(model, vals, out, active, pos, stop, limit + 1)
    monkeypatch.setattr(gen, "record", one_too_many)
    r = compare(prog, model, 30, seed=3)
    assert r["mismatches"] > 0
    assert "(generated)" in r["examples"][0]["model"]
