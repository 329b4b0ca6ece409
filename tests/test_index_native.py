"""The native index kernel (runtime/index_native.py) decodes the same tokens as the torch index path and the dense
pass: every generating program in programs/ (float32 and float64), random Turing machines in chain-of-thought mode
(both encodings, against the simulator), batches whose rows stop at different times, prompts at the position
limit, and the fallback to the torch index path for a model with an unproven head. No test here times anything.
"""
from __future__ import annotations

import random

import pytest

pytest.importorskip("numba", reason="the native index kernel needs the `native` extra (pip install hardwire[native])")

import torch  # noqa: E402
from hardwire.compiler.core.errors import HardwireError  # noqa: E402
from hardwire.runtime import index_native  # noqa: E402
from hardwire.runtime.generate import generate  # noqa: E402
from hardwire.runtime.index_decode import native_why_not  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hardwire.harness import sample_input  # noqa: E402
from tests.machines import cot_tm, machines  # noqa: E402
from tests.test_index_attention import GENERATING, first_seen, model_of, tampered  # noqa: E402

DTYPES = [torch.float32, torch.float64]


def three_ways(model, batch: list[list], **kw) -> list[list]:
    """The native kernel's tokens, asserted equal to the torch index path's and the dense pass's."""
    got = generate(model, batch, attention="index", kernel="native", **kw)
    assert got == generate(model, batch, attention="index", kernel="torch", **kw)
    assert got == generate(model, batch, fast=False, **kw)
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", GENERATING)
def test_every_generating_program_qualifies_and_decodes_as_dense(name, dtype):
    prog, model = model_of(name, dtype)
    assert native_why_not(model) is None
    rng = random.Random(f"{name}{dtype}")
    for _ in range(3):
        batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, 0, prog.exact_len)
                 for _ in range(4)]
        three_ways(model, batch)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_rows_stop_at_different_times_and_at_the_position_limit(dtype):
    """Each row decodes as it does alone; a prompt of max_len tokens generates nothing; max_len cuts rows short."""
    prog, model = model_of("turing_cot", dtype)
    full = [1, 0] * (prog.max_len // 2) + [1] * (prog.max_len % 2)
    batch = [[0], [1, 0, 1], full, [1] * 7, full[:-1], [0, 1]]
    got = three_ways(model, batch)
    assert got[2] == [] and len(got[4]) == 1 and len({len(r) for r in got}) > 2
    assert got == [generate(model, [p], attention="index", kernel="native")[0] for p in batch]
    short = three_ways(model, [[0], [1, 0, 1], [1] * 9, [0, 1]], max_len=9)
    assert [len(r) for r in short] == [8, 6, 0, 7]


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=4))
@settings(max_examples=10, deadline=None)
def test_earliest_and_latest_tables(batch):
    """`earliest` (a code's first key kept) and `latest` heads over token codes, as the torch path and dense."""
    three_ways(first_seen(), batch)


@given(machines(), st.sampled_from(DTYPES))
@settings(max_examples=8, deadline=None)
def test_random_machines_by_chain_of_thought_cells(case, dtype):
    model, prompt, want = cot_tm(*case, steps=60, dtype=dtype)
    assert three_ways(model, [prompt])[0] == want


@given(machines(), st.sampled_from(DTYPES))
@settings(max_examples=8, deadline=None)
def test_random_machines_by_chain_of_thought_words(case, dtype):
    """`vocab word` (a token embedded by its bits) and a word output: the default `hardwire tm --mode cot`."""
    model, prompt, want = cot_tm(*case, steps=40, words=True, dtype=dtype)
    assert native_why_not(model) is None
    assert three_ways(model, [prompt])[0] == want


def test_an_unproven_head_falls_back_to_the_torch_index_path():
    model = tampered(0.5, 0)   # head 0's margin is too small: it is refused
    assert "not proven" in native_why_not(model)
    prompts = [[0], [1, 1, 0]]
    assert generate(model, prompts, attention="index") == generate(model, prompts, fast=False)
    with pytest.raises(HardwireError, match="not proven"):
        generate(model, prompts, attention="index", kernel="native")


def test_without_numba_the_torch_path_decodes_and_an_explicit_request_is_one_error(monkeypatch):
    _, model = model_of("parity_cot", torch.float32)
    want = generate(model, [[0, 1]], attention="index", kernel="native")
    monkeypatch.setattr(index_native, "numba", None)
    assert "numba" in native_why_not(model)
    assert generate(model, [[0, 1]], attention="index") == want
    with pytest.raises(HardwireError, match="numba"):
        generate(model, [[0, 1]], attention="index", kernel="native")


@pytest.mark.parametrize("kernel", ["native", "torch"])
def test_a_progress_report_per_token_and_row_0s_stamps(kernel):
    """on_token is called once per token (the kernel runs in chunks); stamps time the tokens of row 0 asked for."""
    _, model = model_of("turing_cot", torch.float32)
    calls, stamps = [], {0: None, 5: None, 9: None, 10_000: None}
    got = generate(model, [[1, 0, 1], [0]], attention="index", kernel=kernel, on_token=lambda: calls.append(1),
                   stamps=stamps)
    assert len(calls) == max(len(r) for r in got) and len(got[0]) > 9
    assert stamps[0] <= stamps[5] <= stamps[9] and stamps[10_000] is None
