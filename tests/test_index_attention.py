"""Index attention (runtime/index_attention.py, index_decode.py): the rules proven from the weights pick the key the
dense softmax attends to, and `generate(attention="index")` decodes the same tokens as the dense pass.

Checked on every generating program in programs/ (random prompts, float32 and float64), random Turing machines in
chain-of-thought mode (against the simulator too), the attention patterns of random causal programs
(tests/fuzz_programs.py), and heads whose weights were tampered with so that no rule holds.
"""
from __future__ import annotations

import functools
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.generate import generate
from hardwire.runtime.index_attention import CodeReader, Part, Refusal, Rule, code_scores, derive, enumerate_codes
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardwire.harness import sample_input
from tests.fuzz_programs import RandomChooser, build_program, compiled
from tests.machines import cot_tm, machines

ROOT = Path(__file__).resolve().parents[1]
GENERATING = sorted(p.stem for p in (ROOT / "programs").glob("*.hw")
                    if "\ngenerate " in (ROOT / "programs" / p.name).read_text())
# the rules each generating program's heads prove, in (layer, head) order: every head of these is a lookup
KINDS = {"add_cot": ["position"] * 4, "parity_cot": ["position"], "turing_cot": ["position", "latest"]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@functools.cache
def model_of(name: str, dtype: torch.dtype):
    prog = check_file(str(ROOT / "programs" / f"{name}.hw"))
    return prog, from_compiled(compile_program(prog), "cpu", dtype)


def test_the_generating_programs_are_all_named():
    assert sorted(KINDS) == GENERATING


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", GENERATING)
def test_every_head_of_the_generating_programs_is_proven(name, dtype):
    _, model = model_of(name, dtype)
    rules = derive(model)
    assert all(isinstance(r, Rule) for r in rules), [r for r in rules if isinstance(r, Refusal)]
    assert [r.kind for r in rules] == KINDS[name]
    assert all(r.leak <= 2.6e-13 and r.margin > 30 for r in rules)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", GENERATING)
@given(seed=st.integers(0, 2 ** 31))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_index_decoding_equals_dense(name, dtype, seed):
    prog, model = model_of(name, dtype)
    rng = random.Random(seed)
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, 0, prog.exact_len) for _ in range(3)]
    assert generate(model, batch, attention="index") == generate(model, batch, fast=False)


@given(machines())
@settings(max_examples=20, deadline=None)
def test_random_machines_by_chain_of_thought(case):
    """Random machines in cot mode: the index path, the dense pass and the simulator agree token for token."""
    model, prompt, want = cot_tm(*case, steps=60)
    assert [r.kind for r in derive(model)] == ["position", "latest"]
    got = generate(model, [prompt], attention="index")[0]
    assert got == want == generate(model, [prompt], fast=False)[0]


def test_a_batch_of_prompts_of_different_lengths():
    """Rows start decoding at different positions (padding in the prefill); each row as alone, and as dense."""
    prog, model = model_of("turing_cot", torch.float32)
    batch = [[0], [1, 0, 1], [1] * 7, [0, 1]]
    got = generate(model, batch, attention="index")
    assert got == generate(model, batch, fast=False)
    assert got == [generate(model, [p], attention="index")[0] for p in batch]


FIRST_SEEN = """program first_seen
vocab {0, 1, 2, 3}
max_len 20
causal
generate next

first = earliest(select(tokens, tokens, ==), indices)
last = latest(select(tokens, (tokens + 1) % 4, ==), indices)
output next = (default(first, 0) + default(last, 0) + tokens) % 4
"""


@functools.cache
def first_seen():
    return from_compiled(compile_program(check_source(FIRST_SEEN, "first_seen")), "cpu")


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=4))
@settings(max_examples=25, deadline=None)
def test_earliest_and_latest_heads_decode_as_dense(batch):
    """A generating program whose heads are `earliest` and `latest` over token codes (the first-write table)."""
    model = first_seen()
    assert [r.kind for r in derive(model)] == ["earliest", "latest"]
    assert generate(model, batch, attention="index") == generate(model, batch, fast=False)


# ---- the rules against the dense attention pattern of random causal programs ----------------------------------
def causal_seeds(n: int = 16) -> list[int]:
    """The first n causal fuzz programs, and among them the first two with an `earliest` and with a `latest`
    (so both rules are exercised whatever the generator's mix)."""
    feats = {s: build_program(RandomChooser(s)).features for s in range(400)}
    causal = [s for s, f in feats.items() if "causal" in f]
    picks = [s for s in causal if "earliest" in feats[s]][:2] + [s for s in causal if "latest" in feats[s]][:2]
    return sorted(set(picks) | set(causal[:n - len(set(picks))]))


CAUSAL_SEEDS = causal_seeds()


def winners(rule: Rule, x: torch.Tensor, t: int) -> list[int]:
    """The key each query position 1..t-1 of one row picks by the rule (x: the residual before its layer, [T, D])."""
    qc = rule.query.index(x[:, rule.query.dims()].t())
    kc = rule.key.index(x[:, rule.key.dims()].t())
    out = []
    for j in range(1, t):
        tgt = int(rule.target[qc[j]])
        if rule.kind == "position":
            out.append(tgt if 1 <= tgt <= j else 0)
        else:
            match = [i for i in range(1, j + 1) if tgt >= 0 and int(kc[i]) == tgt]
            out.append((max if rule.kind == "latest" else min)(match, default=0))
    return out


@pytest.mark.parametrize("seed", CAUSAL_SEEDS)
def test_rules_pick_what_the_softmax_attends_to(seed):
    built = compiled(build_program(RandomChooser(seed)).source)
    if built is None:
        pytest.skip("the compiler refuses this program")
    rules_pick_the_softmax_keys(*built, seed)


def rules_pick_the_softmax_keys(prog, model, seed: int) -> None:
    """Each proven rule's key gets the dense softmax's weight (above 1 - 1e-6) at every query of 4 random inputs."""
    rng = random.Random(seed)
    bits = prog.word_bits if prog.word_vocab else 0
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, bits, prog.exact_len) for _ in range(4)]
    ids, lengths = model.encode(batch)
    with torch.no_grad():
        _, residuals, patterns = model(ids, lengths, trace=True)
    layer_of = [i for i in range(model.config["n_layers"]) if model.p(f"layers.{i}.attn.W_Q") is not None]
    for rule in (r for r in derive(model) if isinstance(r, Rule)):
        att = patterns[layer_of.index(rule.layer)]
        for b in range(len(batch)):
            t = int(lengths[b])
            for j, k in enumerate(winners(rule, residuals[rule.layer][b], t), start=1):
                assert float(att[b, rule.head, j, k]) > 1 - 1e-6, (rule.layer, rule.head, j, k)


def test_random_causal_programs_prove_some_heads_of_each_kind():
    """The fuzz programs above exercise both rules (and refusals), so the pattern test has something to check."""
    kinds = set()
    for seed in CAUSAL_SEEDS:
        built = compiled(build_program(RandomChooser(seed)).source)
        if built is not None:
            kinds |= {r.kind if isinstance(r, Rule) else "refused" for r in derive(built[1])}
    assert kinds >= {"latest", "earliest", "position", "refused"}


# ---- heads that no rule fits ----------------------------------------------------------------------------------
def tampered(scale: float, head: int) -> torch.nn.Module:
    """turing_cot with one head's W_K scaled (its margin shrinks with it)."""
    model = from_compiled(compile_program(check_file(str(ROOT / "programs" / "turing_cot.hw"))), "cpu")
    model.w["layers__0__attn__W_K"].data[head] *= scale
    return model


@pytest.mark.parametrize("head", [0, 1])
def test_a_head_whose_margin_is_too_small_is_refused_and_runs_as_before(head):
    model = tampered(0.5, head)   # margin about 20: leaks more than e^-29 over 108 keys
    rules = derive(model)
    assert isinstance(rules[head], Refusal) and "leaks" in rules[head].why
    assert isinstance(rules[1 - head], Rule)
    prompts = [[0], [1, 1, 0]]
    assert generate(model, prompts, attention="index") == generate(model, prompts, fast=False)


def test_a_head_that_fits_no_rule_is_refused():
    """A causal mean (every key ties) is neither `latest by code` nor `the key at a position`."""
    model = from_compiled(compile_program(check_file(str(ROOT / "programs" / "parity_count.hw"))), "cpu")
    rules = derive(model)
    assert rules and all(isinstance(r, Refusal) and "no rule fits" in r.why for r in rules)


def test_unknown_attention_is_an_error():
    _, model = model_of("parity_cot", torch.float32)
    with pytest.raises(ValueError, match="index"):
        generate(model, [[0, 1]], attention="indexed")


# ---- key codes as coordinates (a word's bits, a one-hot, a scalar grid), against enumerating every code ----------
@st.composite
def readers(draw):
    """A CodeReader over 1-3 groups at dims 2.. (one-hot, a word with a range, a scalar grid)."""
    parts, at = [], 2
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["onehot", "word", "scalar"]))
        if kind == "onehot":
            n = draw(st.integers(1, 5))
            parts.append(Part(list(range(at, at + n)), "onehot", np.eye(n)))
        elif kind == "word":
            n = draw(st.integers(2, 5))
            lo = draw(st.integers(-(1 << (n - 1)), (1 << (n - 1)) - 1))
            hi = draw(st.integers(lo, (1 << (n - 1)) - 1))
            v = np.arange(lo, hi + 1)
            parts.append(Part(list(range(at, at + n)), "word", ((v[:, None] >> np.arange(n)) & 1).astype(float),
                              lo=lo))
        else:
            grid = sorted(draw(st.sets(st.integers(-4, 9), min_size=1, max_size=4)))
            parts.append(Part([at], "scalar", np.array(grid, dtype=float)[:, None], grid=[float(g) for g in grid]))
        at += len(parts[-1].dims)
    return CodeReader(parts), at


@given(readers(), st.data())
@settings(max_examples=60, deadline=None)
def test_coordinate_maxima_bound_every_code(case, data):
    """The best code, its score and the runner-up bound, computed coordinate by coordinate (a word bit by bit),
    agree with scoring every code of the value sets; and CodeReader.index reads each code back as its number."""
    reader, d = case
    rows = np.arange(2, d)
    e = data.draw(st.integers(1, 4))
    wk = np.zeros((d, e))   # W_K over the whole residual (rows 0, 1: bos, not_bos, unread here)
    wk[rows] = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=len(rows) * e, max_size=len(rows) * e)),
                        dtype=float).reshape(len(rows), e)
    q = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=2 * e, max_size=2 * e)), dtype=float).reshape(2, e)
    xk = enumerate_codes(reader, rows)
    scores = q @ (xk @ wk[rows]).T                                        # [2, codes]
    got = code_scores(reader, q, wk, rows)
    for c in range(2):
        assert scores[c].max() <= got.top[c] + 1e-9
        if got.best[c] >= 0:
            assert abs(scores[c, got.best[c]] - got.top[c]) < 1e-9
            others = np.delete(scores[c], got.best[c])
            assert others.size == 0 or others.max() <= got.second[c] + 1e-9
        else:
            assert scores[c].max() <= got.second[c] + 1e-9
        if all(p.encoding != "word" for p in reader.parts):  # no superset: the maxima are exact
            assert abs(np.sort(scores[c])[-2] - got.second[c]) < 1e-9 if scores.shape[1] > 1 else True
    x = torch.zeros(d, len(xk), dtype=torch.float64)
    x[rows] = torch.from_numpy(xk.T)
    assert reader.index(x[reader.dims()]).tolist() == list(range(len(xk)))
