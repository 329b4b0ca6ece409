"""The index path at a large budget (the slow suite, `pytest -m slow`; CI runs the small-budget tests of
test_index_attention.py, test_index_native.py, test_position_form.py and test_subleq_cot.py).

Every decoder (dense, fast, torch index, native) against the simulator or the emulator, token for token: random
Turing machines and the corpus machines by word chain of thought, BB(5)'s chain to 200,000 tokens, random SUBLEQ
images in trace mode, and random causal programs of tests/fuzz_programs.py."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.generate import generate
from hardwire.runtime.index_attention import Rule, derive
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings

from hardwire.machines.subleq import cot
from tests.fuzz_programs import RandomChooser, build_program, compiled
from tests.machines import machines
from tests.test_index_attention import rules_pick_the_softmax_keys
from tests.test_position_form import BB5, both, word_cot
from tests.test_subleq_cot import built, images, steps_that_fit

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CORPUS = list(csv.DictReader((ROOT / "tests" / "data" / "tm" / "machines.tsv").open(), delimiter="\t"))
KERNELS = ["torch", "native"]


def every_decoder(model, prompt: list, want: list) -> None:
    """The dense pass, the fast path and both index kernels generate `want` from `prompt`."""
    assert generate(model, [prompt], fast=False)[0] == want
    assert generate(model, [prompt], fast=True)[0] == want
    for k in KERNELS:
        assert generate(model, [prompt], attention="index", kernel=k)[0] == want


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines())
def test_random_machines_by_word_chain_of_thought(m):
    text, _, prompt, want = word_cot(*m, 400)
    for model in both(text):
        assert all(isinstance(r, Rule) for r in derive(model))
        every_decoder(model, prompt, want)


@pytest.mark.parametrize("row", CORPUS, ids=[r["name"] for r in CORPUS])
def test_the_corpus_machines_by_word_chain_of_thought(row):
    text, _, prompt, want = word_cot(row["spec"], [0], min(int(row["steps"]), 3_000))
    _, model = both(text)
    every_decoder(model, prompt, want)


def test_bb5_to_200000_tokens_on_the_index_kernels():
    text, enc, prompt, want = word_cot(BB5, [0], 200_000)
    _, model = both(text)
    got = generate(model, [prompt], attention="index", kernel="native", arrays=True)[0]
    assert np.array_equal(got, np.array(want))
    assert generate(model, [prompt], max_len=len(prompt) + 20_000, attention="index", kernel="torch")[0] == \
        want[:20_000]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(40, 12))
def test_random_subleq_images_in_trace_mode(image):
    prog, model = built(40, 12)
    pr = cot.prompt(image, 12)
    steps = steps_that_fit(image, 12)
    want = cot.trace_tokens(image, 40, 12, steps)
    n = len(pr) + len(want)
    for k in KERNELS:
        assert generate(model, [pr], max_len=n, attention="index", kernel=k)[0] == want
    assert generate(model, [pr], max_len=n, fast=False)[0] == want


@pytest.mark.parametrize("seed", range(400, 1200, 7))
def test_rules_pick_what_the_softmax_attends_to_on_more_random_programs(seed):
    """test_index_attention's pattern check on more causal fuzz programs: each proven rule's key gets the dense
    softmax's weight (above 1 - 1e-6) at every query of random batches."""
    source = build_program(RandomChooser(seed))
    got = compiled(source.source) if "causal" in source.features else None
    if got is None:
        pytest.skip("not a causal program the compiler takes")
    rules_pick_the_softmax_keys(*got, seed)


def test_formula_and_table_agree_on_a_long_chain():
    text, _, prompt, want = word_cot(BB5, [0], 5_000)
    table, form = (from_compiled(compile_program(check_source(text, "g"), positions=m), "cpu", torch.float64)
                   for m in ("table", "formula"))
    for k in KERNELS:
        assert generate(table, [prompt], attention="index", kernel=k)[0] == want
        assert generate(form, [prompt], attention="index", kernel=k)[0] == want
