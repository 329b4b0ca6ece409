"""Differential fuzzing: random well-typed programs compile to models that agree with the interpreter.

The programs come from tests/fuzz_programs.py (see its docstring and docs/fuzzing.md). For each one the
checker and the compiler run; a HardwireError there is a refusal (counted, not a failure), any other
exception is a bug. The float32 CPU model then runs a batch of random inputs and its decoded outputs must
equal the interpreter's, value and type.
"""
from __future__ import annotations

import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.sops import Program
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz_programs import (
    FEATURES,
    FuzzProgram,
    RandomChooser,
    assert_agrees,
    build_program,
    compiled,
    programs,
)

CI_EXAMPLES = 300
SLOW_EXAMPLES = 3000
GENERATOR_SEEDS = 300
MAX_REFUSAL_RATE = 0.10
FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def inputs(prog: Program, exact: int | None = None) -> st.SearchStrategy[list]:
    """Valid inputs of `prog`: lengths 1..max_len (or `exact`), vocabulary tokens or words, distinct if declared."""
    if prog.word_vocab:
        half = 1 << (prog.word_bits - 1)
        token = st.one_of(st.sampled_from([-half, -1, 0, 1, half - 1]), st.integers(-half, half - 1))
        most = min(prog.max_len, 2 * half) if prog.distinct else prog.max_len
    else:
        token = st.sampled_from(list(prog.vocab))
        most = min(prog.max_len, len(prog.vocab)) if prog.distinct else prog.max_len
    n = (exact, exact) if exact is not None else (1, most)
    return st.lists(token, min_size=min(n[0], most), max_size=min(n[1], most), unique=prog.distinct)


def check_program(fp: FuzzProgram, data: st.DataObject) -> None:
    """The property: refused, or model == interpreter on a few random inputs (one of them full length)."""
    built = compiled(fp.source)
    if built is None:
        event("refused")
        return
    prog, model = built
    batch = data.draw(st.lists(inputs(prog), min_size=1, max_size=3), label="inputs")
    batch.append(data.draw(inputs(prog, exact=prog.max_len), label="full-length input"))
    assert_agrees(prog, model, batch)
    for ref in (lambda: run(prog, []), lambda: model.run([[]])):  # an empty input is refused by both
        with pytest.raises(HardwireError):
            ref()


@settings(max_examples=CI_EXAMPLES, **FUZZ_SETTINGS)
@given(programs(), st.data())
def test_model_matches_interpreter(fp: FuzzProgram, data: st.DataObject) -> None:
    check_program(fp, data)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **FUZZ_SETTINGS)
@given(programs(), st.data())
def test_model_matches_interpreter_long(fp: FuzzProgram, data: st.DataObject) -> None:
    check_program(fp, data)


def test_generator_is_accepted_and_covers_every_feature() -> None:
    """Over a fixed seed set the checker and compiler accept nearly every program, and every feature shows up."""
    refused, seen = [], set()
    for seed in range(GENERATOR_SEEDS):
        fp = build_program(RandomChooser(seed))
        seen |= fp.features
        try:
            compile_program(check_source(fp.source, "<fuzz>"))
        except HardwireError as e:
            refused.append((seed, str(e)))
    assert len(refused) <= MAX_REFUSAL_RATE * GENERATOR_SEEDS, refused[:5]
    assert seen >= FEATURES, f"never generated: {sorted(FEATURES - seen)}"
    assert seen <= FEATURES, f"undeclared features: {sorted(seen - FEATURES)}"


def test_generator_is_deterministic() -> None:
    assert build_program(RandomChooser(7)) == build_program(RandomChooser(7))


@pytest.mark.parametrize("seed", range(3))
def test_generated_source_reads_back(seed: int) -> None:
    """A generated program is plain text that the checker parses, with at least one output."""
    fp = build_program(RandomChooser(seed))
    assert "output " in fp.source
    assert compiled(fp.source) is not None
