"""The fast paths (runtime/fast.py, sparse.py, hard_attention.py, fast_loop.py) against the plain dense pass:
the same decoded outputs, step counts, emitted values and halting.

Every fast path runs here: compacted layers (dense blocks and COO entries), shared rows (kept lazily in loops),
and hard attention, both assumed in chunks (with the check and the re-run) and decided per query. The dense
pass is the reference; where a run is long, both are also held to the plain-Python reference.
"""
from __future__ import annotations

import functools
import json
import math
import random
from pathlib import Path

import hardwire.runtime.fast_loop as fast_loop
import pytest
import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.fast import FastModel
from hardwire.runtime.fast_cost import cost as pass_cost
from hardwire.runtime.fast_loop import run_loop_fast
from hardwire.runtime.generate import generate
from hardwire.runtime.hard_attention import margins
from hardwire.runtime.loop import run_loop
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.cli.main import main
from hardwire.harness import sample_input
from hardwire.machines.subleq import asm as subleq_asm
from hardwire.machines.subleq import emulator as subleq_ref
from tests.fuzz_programs import compiled, programs, sample_batch
from tests.machines import images, looped_tm, machines

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = sorted(p.stem for p in (ROOT / "programs").glob("*.hw"))
SMALL = {"subleq": {"mem": 16, "bits": 8}}          # params that keep the dense reference quick
SUBLEQ_CORPUS = [ROOT / "tests" / "data" / "subleq" / "hello.sq",
                 ROOT.parent / "shared" / "corpus" / "subleq" / "hello.sq"]
TM_CORPUS = ROOT / "tests" / "data" / "tm" / "machines.tsv"
MODES = ("hard", "soft")


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread while this module runs: its tensors are small, and on a shared 2-core machine a second
    OpenMP thread made the dense reference loop up to 100x slower (docs/performance.md)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@functools.cache
def model_of(name: str, dtype: torch.dtype = torch.float32):
    prog = check_file(str(ROOT / "programs" / f"{name}.hw"), SMALL.get(name))
    return prog, from_compiled(compile_program(prog), "cpu", dtype)


@functools.cache
def subleq(mem: int, bits: int, dtype: torch.dtype = torch.float32):
    return from_compiled(compile_program(check_file(str(ROOT / "programs" / "subleq.hw"), {"mem": mem, "bits": bits})),
                         "cpu", dtype)


def loop_view(results) -> list:
    return [(r.outputs, r.steps, r.halted, r.emitted) for r in results]


def assert_loops_agree(model, batch, max_steps, attention="hard", trace=False):
    """Dense and fast runs of a looped model agree (and, with trace, agree on row 0's registers every pass)."""
    seen_dense, seen_fast = [], []
    dense = run_loop(model, batch, max_steps=max_steps, fast=False,
                     on_step=(lambda t, r: seen_dense.append((t, r))) if trace else None)
    stats: dict = {}
    got = run_loop_fast(model, batch, max_steps=max_steps, attention=attention, stats=stats,
                        on_step=(lambda t, r: seen_fast.append((t, r))) if trace else None)
    assert loop_view(got) == loop_view(dense)
    assert seen_fast == seen_dense
    return dense, stats


# ---- every program in programs/ ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROGRAMS)
@given(seed=st.integers(0, 2 ** 31))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_program_fast_equals_dense(name, seed):
    prog, model = model_of(name)
    rng = random.Random(seed)
    bits = prog.word_bits if prog.word_vocab else 0
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, bits, prog.exact_len) for _ in range(3)]
    mode = MODES[seed % 2]
    if "loop" in model.config:
        assert_loops_agree(model, batch, 60, mode, trace=True)
    elif "generate" in model.config:
        assert generate(model, batch, fast=True) == generate(model, batch, fast=False)
        assert FastModel.of(model, mode).run(batch) == model.run(batch)
    else:
        assert FastModel.of(model, mode).run(batch) == model.run(batch)


# ---- random programs (tests/fuzz_programs.py) ------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(programs(), st.data())
def test_random_programs_fast_equals_dense(fp, data):
    built = compiled(fp.source)
    if built is None:
        return
    prog, model = built
    batch = sample_batch(prog, data, longest=True)
    want = model.run(batch)
    for mode in MODES:
        assert FastModel.of(model, mode).run(batch) == want


# ---- SUBLEQ ------------------------------------------------------------------------------------------------------
@given(images(), st.sampled_from(MODES))
@settings(max_examples=25, deadline=None)
def test_subleq_random_images_every_step(case, mode):
    mem, bits, image = case
    model = subleq(mem, bits)
    dense, _ = assert_loops_agree(model, [image], 80, mode, trace=True)
    want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=80)
    assert (dense[0].steps, dense[0].halted, dense[0].emitted, dense[0].outputs["memory"]) == (
        want.steps, want.halted, want.output, want.mem)


@given(st.lists(images(sizes=((16, 8),)), min_size=2, max_size=9), st.sampled_from(MODES))
@settings(max_examples=15, deadline=None)
def test_subleq_batches_halting_apart(cases, mode):
    """Rows halt at different passes (inside a chunk, then leave the batch); every row as the dense loop."""
    assert_loops_agree(subleq(16, 8), [img for _, _, img in cases], 150, mode)


@pytest.mark.parametrize("path", [p for p in SUBLEQ_CORPUS if p.exists()], ids=lambda p: str(p.parent.parent.name))
def test_subleq_corpus_hello(path):
    image = subleq_ref.load_image(str(path), 256, 16)
    image += [0] * (256 - len(image))
    dense, stats = assert_loops_agree(subleq(256, 16), [image], 100)
    assert subleq_ref.text(dense[0].emitted) == "Hello, world!\n" and dense[0].steps == 71
    assert stats["assume_hard"] and stats["redone_chunks"] == 0 and stats["shared_rows"] > 100


@pytest.mark.parametrize("name", sorted(json.loads((ROOT / "programs" / "subleq" / "expected.json").read_text())))
def test_subleq_example_programs(name):
    """The assembled examples, all in one batch with the hello corpus image: fast vs the emulator (and the dense
    pass on the first 40 steps)."""
    image = subleq_asm.assemble_file(str(ROOT / "programs" / "subleq" / name), bits=16)
    image += [0] * (256 - len(image))
    model = subleq(256, 16)
    assert_loops_agree(model, [image], 40)
    got = run_loop(model, [image], max_steps=5000)[0]
    want = subleq_ref.run(image, mem=256, bits=16, max_steps=5000)
    assert (got.steps, got.halted, got.emitted, got.outputs["memory"]) == (want.steps, want.halted, want.output,
                                                                           want.mem)


def test_batch_split_into_slices(monkeypatch):
    """A batch larger than SPLIT_POSITIONS runs as slices, with the same results."""
    monkeypatch.setattr(fast_loop, "SPLIT_POSITIONS", 40)
    rng = random.Random(3)
    batch = [[rng.randint(-1, 17) for _ in range(16)] for _ in range(7)]
    assert_loops_agree(subleq(16, 8), batch, 80)


def test_margin_failure_runs_the_chunk_again():
    """In float64 the margin M = ln T + ln(2^53) + 1 exceeds the compiled heads' gap of about 33: the assumed
    margins fail, the chunk runs again deciding every query (the ones that miss M by softmax), and the results
    are the dense ones."""
    rng = random.Random(5)
    batch = [[rng.randint(-1, 17) for _ in range(16)] for _ in range(4)]
    _, stats = assert_loops_agree(subleq(16, 8, torch.float64), batch, 60)
    assert not stats["assume_hard"] and stats["redone_chunks"] == 1 and stats["soft_queries"] > 0
    _, stats = assert_loops_agree(subleq(16, 8), batch, 60)
    assert stats["assume_hard"] and stats["redone_chunks"] == 0


def test_margins_per_query():
    """Ties share the weight, a margin below M falls back, and a margin at M or more is hard."""
    fm = FastModel.of(subleq(16, 8))
    t = 5
    big_m = math.log(t) - math.log(fm.u) + 1
    ninf = float("-inf")
    scores = torch.tensor([[[[0.0, -big_m - 1, -40.0, ninf, -50.0],        # one winner
                             [3.0, 3.0, -40.0, ninf, 2.0 - big_m],         # two tied winners
                             [0.0, -big_m / 2, -40.0, ninf, -50.0],        # a key inside the margin
                             [0.0, 1e-9, -40.0, ninf, -50.0]]]])           # within tau: tied
    tau = torch.full((1, 1, 1), 1e-6)
    tied, n, ok = margins(scores, tau, t, fm.u)
    assert ok[0, 0].tolist() == [True, True, False, True]
    assert n[0, 0].tolist() == [1, 2, 1, 2]
    assert tied[0, 0, 1].tolist() == [True, True, False, False, False]


def test_loop_keeps_registers_shared_and_costs_less():
    model = subleq(256, 16)
    fm = FastModel.of(model)
    image = [0] * 256
    ids, lengths = model.encode([image])
    x = fm.to_fm(model.embed(ids, lengths)[0])
    ctx = fm.context(lengths, 257)
    shared = fm.loop_shared(fm.shared_rows(x, ctx), 4)
    labels = [model.labels[i] for i in torch.nonzero(shared).flatten().tolist()]
    assert all(f"pc.b{j}" in labels for j in range(16)) and not any(lab.startswith("m.") for lab in labels)
    plan = fm.plan(shared, 0, 4, 1, 257, loop=True)
    assert all(g.shared for ex in plan.layers for g in ex.heads)
    cost = pass_cost(fm, plan, 257)
    assert cost["fast_macs"] * 20 < cost["dense_macs"] and cost["fast_bytes"] < cost["dense_bytes"]


# ---- Turing machines -------------------------------------------------------------------------------------------
@given(machines(), st.sampled_from(MODES))
@settings(max_examples=25, deadline=None)
def test_looped_machines_every_step(case, mode):
    spec, tape_in = case
    model, tokens, ref, _ = looped_tm(spec, tape_in, 60)
    dense, _ = assert_loops_agree(model, [tokens], 60, mode, trace=True)
    assert (dense[0].steps, dense[0].halted) == (ref.steps, ref.halted)


def test_tm_corpus():
    import csv
    rows = list(csv.DictReader(TM_CORPUS.open(), delimiter="\t"))
    assert rows
    for row in rows:
        model, tokens, ref, offset = looped_tm(row["spec"], [], 10_000)
        dense, _ = assert_loops_agree(model, [tokens], 10_000)
        assert (dense[0].steps, dense[0].halted) == (int(row["steps"]), row["halted"] == "True"), row["name"]


# ---- the command line ------------------------------------------------------------------------------------------
def test_cli_dense_flag(tmp_path, capsys):
    hello = str(SUBLEQ_CORPUS[0])
    infos = []
    for extra in ([], ["--dense"]):
        assert main(["subleq", hello, "--device", "cpu", "--json", *extra]) == 0
        infos.append(json.loads(capsys.readouterr().out))
    assert infos[0]["path"] == "fast" and infos[1]["path"] == "dense"
    assert {k: v for k, v in infos[0].items() if k in ("steps", "output", "memory", "matches_reference")} == \
        {k: v for k, v in infos[1].items() if k in ("steps", "output", "memory", "matches_reference")}
    outs = []
    for extra in ([], ["--dense"]):
        assert main(["tm", "1RB1LB_1LA0LC_1RZ1LD_1RD0RA", "--device", "cpu", "--json", *extra]) == 0
        info = json.loads(capsys.readouterr().out)
        outs.append((info["steps"], info["tape"], info["head"], info["matches_reference"]))
    assert outs[0] == outs[1] == (107, "10111111111111", -9, True)
    weights = str(tmp_path / "loop.safetensors")
    assert main(["compile", str(ROOT / "programs" / "turing_loop.hw"), "-o", weights]) == 0
    capsys.readouterr()
    runs = []
    for extra in ([], ["--dense"]):
        assert main(["run", weights, "--input", " ".join(["0"] * 14), "--device", "cpu", "--json", *extra]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1] and runs[0]["steps"] == 107


# ---- CUDA (never runs on a machine without one) -------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_path_on_cuda():
    model = from_compiled(compile_program(check_file(str(ROOT / "programs" / "subleq.hw"), {"mem": 16, "bits": 8})),
                          "cuda")
    rng = random.Random(1)
    batch = [[rng.randint(-1, 17) for _ in range(16)] for _ in range(64)]
    assert_loops_agree(model, batch, 100)
