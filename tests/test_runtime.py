"""Runtime: float64, traces, batching of mixed lengths, saved files, and CUDA when present."""
import random

import pytest
import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.harness import sample_input
from tests.fuzz_programs import programs, sample_batch
from tests.test_programs import PROGRAMS, REFERENCES


def test_float64_and_float32_agree():
    prog = check_file(str(PROGRAMS / "frac_prevs.hw"))
    m = compile_program(prog)
    xs = ["x", "y", "y", "x", "x"]
    for dtype in (torch.float32, torch.float64):
        assert from_compiled(m, "cpu", dtype).run([xs])[0] == run(prog, xs)


def test_trace_returns_every_layer_and_pattern():
    prog = check_file(str(PROGRAMS / "reverse.hw"))
    model = from_compiled(compile_program(prog), "cpu")
    ids, lengths = model.encode([["a", "b", "c"]])
    x, residuals, patterns = model(ids, lengths, trace=True)
    assert len(residuals) == model.config["n_layers"] + 1
    assert len(patterns) == sum(1 for layer in model.config["layers"] if layer["heads"])
    for att in patterns:  # hard attention: every row puts (almost) all its weight on one key or a uniform set
        assert torch.allclose(att.sum(-1), torch.ones_like(att.sum(-1)))
    assert torch.equal(residuals[-1], x)


def test_saved_file_runs_like_the_compiled_model(tmp_path):
    prog = check_file(str(PROGRAMS / "sort.hw"))
    m = compile_program(prog)
    path = tmp_path / "sort.safetensors"
    m.save(str(path))
    batch = [[3, 1, 2, 3], [4], [2, 2, 1, 1, 4, 4, 3, 3]]
    assert load(str(path), "cpu").run(batch) == [run(prog, xs) for xs in batch]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_cuda_matches_interpreter(name):
    import random
    prog = check_file(str(PROGRAMS / f"{name}.hw"))
    model = from_compiled(compile_program(prog), "cuda")
    rng = random.Random(0)
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct) for _ in range(512)]
    assert model.run(batch) == [run(prog, xs) for xs in batch]


def test_sample_input_keeps_distinct_words_distinct():
    """`hardwire check` on a `distinct` program over `vocab word` drew repeated words (found by certify's
    random-program test): a refused input, not a check."""
    rng = random.Random(0)
    for _ in range(200):
        xs = sample_input(rng, [], 8, True, word_bits=3)
        assert len(set(xs)) == len(xs) and all(-4 <= x < 4 for x in xs)
    assert sorted(sample_input(rng, [], 8, True, word_bits=3, exact=True)) == list(range(-4, 4))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.data())
def test_query_chunks_change_nothing(fp, data):
    """A pass that need not return the attention pattern runs its queries in chunks (runtime.model.ATTENTION_BYTES):
    on random programs and inputs, residual and outputs equal the one-chunk pass that returns the pattern."""
    import hardwire.runtime.model as rm

    from tests.fuzz_programs import compiled
    built = compiled(fp.source)
    if built is None:
        return
    prog, model = built
    batch = sample_batch(prog, data)
    ids, lengths = model.encode(batch)
    limit = rm.ATTENTION_BYTES
    with torch.no_grad():
        whole, _, _ = model(ids, lengths, trace=True)
        try:
            rm.ATTENTION_BYTES = data.draw(st.integers(1, 4096), label="bytes")
            chunked = model(ids, lengths)
        finally:
            rm.ATTENTION_BYTES = limit
    assert torch.allclose(chunked, whole, rtol=0, atol=1e-5)
    assert model.decode(chunked, lengths) == model.decode(whole, lengths)


def test_long_input_scores_stay_bounded():
    """parity_cc at n = 4096 on the plain pass: a [1, 2, 4096, 4096] float32 pattern would be 128 MB; the chunked
    pass holds at most ATTENTION_BYTES of scores and gives the parity."""
    import hardwire.runtime.model as rm
    prog = check_file(str(PROGRAMS / "parity_cc.hw"), {"n": 4096})
    model = from_compiled(compile_program(prog), "cpu")
    xs = [random.Random(3).randrange(2) for _ in range(4096)]
    seen = []
    real = torch.softmax

    def spy(scores, dim):
        seen.append(scores.numel() * scores.element_size())
        return real(scores, dim=dim)
    try:
        torch.softmax = spy
        got = model.run([xs])[0]["parity"][-1]
    finally:
        torch.softmax = real
    assert bool(got) == (sum(xs) % 2 == 1)
    assert seen and max(seen) <= rm.ATTENTION_BYTES < 2 * 4096 * 4096 * 4
