"""Memory is estimated before a run: batches are cut to fit a budget (same results), an input that alone does
not fit is refused with the estimate, and the two places that grew without bound (a scalar decode's [N, G]
distances, an MLP's [B*T, d_mlp] hidden units) are bounded at the source (issue 17, faults)."""
import random
import re
from pathlib import Path

import hardwire.runtime.model as rm
import pytest
import torch
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime import memory
from hardwire.runtime.model import from_compiled, nearest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardwire.cli.main import main
from hardwire.harness import compare, run_batch, sample_input

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
MEAN = ("program mean\nvocab {0, 1}\nmax_len 48\ncausal\n"
        "output y = aggregate(select(indices, indices, <=), scalar(tokens))\n")


def model_of(text_or_path: str, dtype=torch.float32):
    prog = check_source(text_or_path, "mean.hw") if "\n" in text_or_path else check_file(text_or_path)
    return prog, from_compiled(compile_program(prog), "cpu", dtype)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=40, unique=True),
       st.lists(st.floats(-60, 60, allow_nan=False), min_size=0, max_size=60), st.booleans())
def test_nearest_is_argmin_of_the_distances(grid, z, increasing):
    """The searched path (an increasing grid) and the chunked path (any other) pick what argmin picks."""
    g = torch.tensor(sorted(grid) if increasing else grid, dtype=torch.float64)
    zs = torch.tensor(z + [float(v) for v in g] + [float(a + b) / 2 for a, b in zip(g[:-1], g[1:])],
                      dtype=torch.float64)   # grid points and midpoints: the ties
    want = (zs[:, None] - g[None, :]).abs().argmin(-1) if zs.numel() else torch.zeros(0, dtype=torch.long)
    assert nearest(zs, g).tolist() == want.tolist()


def test_a_scalar_decode_holds_no_distance_matrix(monkeypatch):
    """A mean over 80,000 values at 100,000 positions (the [N, G] distances were 32 GB) is searched, and a
    grid that is not increasing is decoded in chunks of GRID_BYTES."""
    grid = torch.arange(80_000, dtype=torch.float32) / 80_000
    z = torch.rand(100_000, generator=torch.Generator().manual_seed(0)) * grid[-1]   # within the grid's span

    def boom(*args, **kwargs):
        raise AssertionError("argmin over a distance matrix")
    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "argmin", boom)
        got = nearest(z, grid)
    assert got.shape == (100_000,) and bool(((grid[got] - z).abs() <= 0.5 / 80_000 + 1e-6).all())
    monkeypatch.setattr(rm, "GRID_BYTES", 4 * 7 * 30)   # 7 rows at a time
    shuffled = grid[:30].flip(0)
    assert nearest(z[:100], shuffled).tolist() == (z[:100, None] - shuffled).abs().argmin(-1).tolist()


def test_chunked_mlp_gives_the_same_outputs(monkeypatch):
    """reverse's MLP (256 hidden units) run one position at a time decodes as it does whole."""
    prog, model = model_of(str(PROGRAMS / "reverse.hw"))
    batch = [list("abcd"), list("dcbaabcd"), list("a")]
    whole = model.run(batch)
    monkeypatch.setattr(rm, "MLP_BYTES", 1)
    assert model.run(batch) == whole


def test_a_tiny_budget_cuts_batches_and_changes_nothing(monkeypatch):
    prog, model = model_of(MEAN)
    est = memory.estimate(model)
    want = compare(prog, model, 30, seed=5)
    sizes = []
    real = type(model).run

    def spy(self, batch):
        sizes.append(len(batch))
        return real(self, batch)
    monkeypatch.setattr(type(model), "run", spy)
    got = compare(prog, model, 30, seed=5, memory=est.bytes(4))
    assert sizes == [4] * 7 + [2] and got["mismatches"] == want["mismatches"] == 0
    assert got["examples"] == want["examples"]
    monkeypatch.setenv(memory.BUDGET_ENV, str(est.bytes(3)))
    sizes.clear()
    rows = run_batch(model, [[0, 1]] * 7)
    assert sizes == [3, 3, 1] and rows == run_batch(model, [[0, 1]] * 7)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12))
def test_rows_that_fit_stay_within_the_budget(rows, most):
    _, model = model_of(MEAN)
    est = memory.estimate(model)
    got = memory.rows_that_fit(model, most, est.bytes(rows))
    assert got == min(most, rows) and est.bytes(got) <= est.bytes(rows)


def test_an_impossible_budget_is_refused_with_the_estimate(monkeypatch, capsys, tmp_path):
    prog, model = model_of(MEAN)
    one = memory.gigabytes(memory.estimate(model).bytes(1))
    with pytest.raises(HardwireError, match=re.escape(f"checking mean needs about {one} for one input of 48 "
                                                      "tokens (d_model 4), more than the 1e-06 MB of memory")):
        compare(prog, model, 10, memory=1)
    (tmp_path / "mean.hw").write_text(MEAN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(memory.BUDGET_ENV, "1000")
    assert main(["check", "mean.hw", "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"hardwire: error: checking mean needs about {one} for one input of 48 tokens "
                                 "(d_model 4), more than the 0.001 MB of memory it may use; lower max_len or "
                                 "simplify the program\n")
    monkeypatch.setenv(memory.BUDGET_ENV, "lots")
    assert main(["check", "mean.hw", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == "hardwire: error: $HARDWIRE_MEMORY_BUDGET must be a number of bytes, got 'lots'\n"


def test_the_machine_budget_is_positive(monkeypatch):
    monkeypatch.delenv(memory.BUDGET_ENV, raising=False)
    assert memory.available_bytes() > 0 and 0 < memory.budget_bytes() <= memory.available_bytes()


def test_a_loop_batch_is_cut_to_fit_too(monkeypatch, tmp_path):
    """A looped program's batch runs in parts that fit the budget, with the same results, and the trace still
    follows row 0 only."""
    prog = check_file(str(PROGRAMS / "turing_loop.hw"))
    model = from_compiled(compile_program(prog), "cpu")
    rng = random.Random(3)
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct) for _ in range(7)]
    whole = run_batch(model, batch, max_steps=200)
    est = memory.estimate(model)
    sizes = []
    import hardwire.runtime.loop as loop
    real = loop.run_loop

    def spy(m, part, **kw):
        sizes.append(len(part))
        return real(m, part, **kw)
    monkeypatch.setattr(loop, "run_loop", spy)
    monkeypatch.setenv(memory.BUDGET_ENV, str(est.bytes(3)))
    parts = run_batch(model, batch, max_steps=200, trace=str(tmp_path / "t.jsonl"))
    assert sizes == [3, 3, 1] and parts == whole
    monkeypatch.delenv(memory.BUDGET_ENV)
    run_batch(model, batch[:1], max_steps=200, trace=str(tmp_path / "one.jsonl"))
    assert (tmp_path / "t.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
