"""hardwire.from_rasp on every program of Tracr's compiler/test_cases.py: equal to rasp.evaluate and to the expected
outputs, on the case's input and on random ones (skipped without the `[tracr]` extra)."""
from __future__ import annotations

from fractions import Fraction

import pytest

pytest.importorskip("tracr", reason="the RASP front end needs Tracr: pip install 'hardwire[tracr]'")

from hardwire.compiler.core.errors import HardwireError  # noqa: E402
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tracr.compiler import lib, test_cases  # noqa: E402
from tracr.rasp import rasp  # noqa: E402

import hardwire  # noqa: E402
from hardwire.frontends.rasp import same_outputs, to_hw  # noqa: E402

CASES = ([(c, False) for c in test_cases.TEST_CASES] + [(c, True) for c in test_cases.CAUSAL_TEST_CASES]
         + [(c, False) for c in test_cases.UNSUPPORTED_TEST_CASES])
IDS = [f"{c['testcase_name']}{'_causal' if causal else ''}" for c, causal in CASES]
_MODELS: dict = {}


def model(i: int):
    """Case i compiled once."""
    if i not in _MODELS:
        case, causal = CASES[i]
        _MODELS[i] = hardwire.from_rasp(case["program"], vocab=case["vocab"], max_len=case["max_seq_len"],
                                        causal=causal, device="cpu")
    return _MODELS[i]


def evaluate(case: dict, causal: bool, xs: list):
    """rasp.evaluate on xs (in a causal case, position i sees xs[:i + 1]); None where RASP itself fails."""
    prog = case["program"]
    try:
        if not causal:
            return list(rasp.evaluate(prog, xs))
        return [rasp.evaluate(prog, xs[:i + 1])[i] for i in range(len(xs))]
    except (ValueError, TypeError, ZeroDivisionError):
        return None


def outputs(m, batch: list[list]) -> list[list]:
    """The model's one output on each input of the batch."""
    return [next(iter(r["outputs"].values())) for r in m(batch, batch=True)]


def test_every_case_is_counted():
    """The suite covers every Tracr case: 63 (TEST_CASES, CAUSAL_TEST_CASES, UNSUPPORTED_TEST_CASES)."""
    assert len(CASES) == len(test_cases.TEST_CASES) + len(test_cases.CAUSAL_TEST_CASES) + len(
        test_cases.UNSUPPORTED_TEST_CASES)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_case_input(i):
    """The case's own input: the weights give rasp.evaluate's output and the expected one."""
    case, causal = CASES[i]
    xs = case.get("test_input") or sorted(case["vocab"], key=str)[:case["max_seq_len"]]
    want = evaluate(case, causal, xs)
    assert want is not None, "RASP defines an output on this input"
    got = outputs(model(i), [xs])[0]
    assert same_outputs(want, got), (xs, want, got)
    if "expected_output" in case:
        assert same_outputs(case["expected_output"], got), (xs, case["expected_output"], got)
    assert model(i).check(samples=20).mismatches == 0   # the weights agree with the interpreter, too


def random_inputs_agree(i: int, batch: list[list]) -> None:
    case, causal = CASES[i]
    wants = [evaluate(case, causal, xs) for xs in batch]
    kept = [(xs, w) for xs, w in zip(batch, wants) if w is not None]
    assume(kept)
    got = outputs(model(i), [xs for xs, _ in kept])
    for (xs, w), g in zip(kept, got):
        assert same_outputs(w, g), (xs, w, g)


def batches(i: int):
    case, _ = CASES[i]
    vocab = sorted(case["vocab"], key=str)
    return st.lists(st.lists(st.sampled_from(vocab), min_size=1, max_size=case["max_seq_len"]), min_size=1,
                    max_size=8)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_random_inputs(i):
    """Random inputs (a small budget): the weights give rasp.evaluate's output wherever RASP defines one."""
    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches(i))
    def run(batch):
        random_inputs_agree(i, batch)
    run()


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_random_inputs_large(i):
    """As test_random_inputs, at a large budget."""
    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batches(i))
    def run(batch):
        random_inputs_agree(i, batch)
    run()


# hardwire's sizes of the bench's programs (hardwire/bench/tracr.py) at max_len 5 and 10: (layers, heads, d_model,
# non-zeros), recorded from from_rasp. A compiler change that moves them re-records them here (and reruns the
# bench); bench/results/tracr.json holds Tracr's beside them.
SIZES = {
    "length/5": (1, 1, 4, 46), "length/10": (1, 1, 4, 81), "reverse/5": (3, 2, 19, 164),
    "reverse/10": (3, 2, 29, 294), "hist/5": (1, 1, 8, 56), "hist/10": (1, 1, 8, 91),
    "sort_unique/5": (2, 2, 13, 97), "sort_unique/10": (2, 2, 18, 202), "sort/5": (3, 3, 18, 204),
    "sort/10": (3, 3, 23, 384), "sort_freq/5": (5, 4, 31, 287), "sort_freq/10": (5, 4, 46, 572),
    "frac_prevs/5": (1, 1, 4, 14), "frac_prevs/10": (1, 1, 4, 19), "pair_balance/5": (1, 1, 5, 16),
    "pair_balance/10": (1, 1, 5, 21), "shuffle_dyck1/5": (3, 3, 17, 100), "shuffle_dyck1/10": (3, 3, 22, 160),
    "shuffle_dyck2/5": (4, 4, 24, 169), "shuffle_dyck2/10": (4, 4, 29, 274), "shuffle_dyck3/5": (4, 5, 29, 247),
    "shuffle_dyck3/10": (4, 5, 34, 397), "make_count/5": (1, 1, 7, 49), "make_count/10": (1, 1, 7, 84),
    "count_less_freq/5": (2, 2, 15, 108), "count_less_freq/10": (2, 2, 20, 183), "detect_pattern/5": (1, 2, 14, 91),
    "detect_pattern/10": (1, 2, 14, 106), "shift_by/5": (1, 1, 9, 33), "shift_by/10": (1, 1, 9, 48),
    "nary_sequencemap/5": (1, 0, 11, 70), "nary_sequencemap/10": (1, 0, 16, 140),
}


@pytest.mark.parametrize("key", sorted(SIZES))
def test_bench_program_sizes(key):
    """Each bench program's compiled size, pinned (layers, heads, d_model, non-zeros)."""
    from hardwire.bench.tracr import hardwire_sizes, programs
    name, L = key.split("/")
    make, vocab, distinct = programs()[name]
    m = hardwire.from_rasp(make(int(L)), vocab=vocab(int(L)), max_len=int(L), name=name, distinct=distinct)
    s = hardwire_sizes(m)
    assert (s["layers"], s["heads"], s["d_model"], s["nonzero_params"]) == SIZES[key]


def test_pair_balance_is_one_mean():
    """`opens - closes` (two means over equal selectors) is one mean of the difference: no MLP, one head, at
    every length (the cliff of issue 19 was an MLP over every pair of means)."""
    for L in (5, 16, 32):
        m = hardwire.from_rasp(lib.make_pair_balance(rasp.tokens, "(", ")"), vocab=set("ab()"), max_len=L)
        s = m.summary()
        assert (s["layers"], s["heads"], s["d_mlp"]) == (1, 1, 0)
        assert s["d_model"] == 5   # bos, not_bos, the two token scalars, the mean: the prefix select is `true` under
        #                            the causal mask (compiler/mask.py), so no indices
        assert m.check(samples=30).mismatches == 0


def test_a_lambda_predicate_is_one_head():
    """shift_by's `q == k + 2` is a custom predicate (one head, no MLP): the text says so."""
    text = to_hw(lib.shift_by(2, rasp.tokens), {"a", "b"}, 5)
    assert "(a, b) -> select_pred_t[a, b]" in text
    assert "table select_pred_t { (0, 2) -> true, (1, 3) -> true, (2, 4) -> true }" in text


def test_names_are_the_rasp_labels():
    text = to_hw(lib.make_reverse(rasp.tokens), {"a", "b"}, 4)
    for name in ("opp_idx", "opp_idx_1", "reverse_selector", "output reverse ="):
        assert name in text


def test_a_constant_sop_is_refused_naming_its_label():
    with pytest.raises(HardwireError, match=r"RASP expression 'fixed.*' cannot be compiled: ConstantSOp"):
        hardwire.from_rasp(rasp.ConstantSOp([1, 2]).named("fixed"), vocab={1, 2}, max_len=2)


def test_a_mean_with_default_none_that_may_select_nothing_is_refused():
    prog = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT),
                                         rasp.numerical(rasp.Map(lambda x: x, rasp.tokens)), default=None)).named("m")
    with pytest.raises(HardwireError, match=r"RASP expression 'm_\d+' cannot be compiled: it takes a mean with "
                                            r"default None"):
        hardwire.from_rasp(prog, vocab={1, 2, 3}, max_len=4)


def test_a_compile_error_names_the_rasp_expression():
    """A categorical aggregate of strings hardwire cannot prove selects one key: the label, not a .hw line."""
    prog = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LEQ), rasp.tokens).named("pick")
    with pytest.raises(HardwireError, match=r"RASP expression 'pick.*' cannot be compiled: it is categorical, "
                                            r"hardwire cannot prove"):
        hardwire.from_rasp(prog, vocab={"a", "b"}, max_len=4)


def test_a_mean_stands_in_for_an_unprovable_categorical_aggregate():
    """sort_unique on repeated tokens: RASP's mean of the selected numbers, None where nothing is selected."""
    prog = lib.make_sort_unique(rasp.tokens, rasp.tokens)
    m = hardwire.from_rasp(prog, vocab={1, 2, 3}, max_len=4)
    for xs in ([1, 1, 2], [3, 3, 3, 1], [2, 1, 2, 1]):
        assert same_outputs(rasp.evaluate(prog, xs), m(xs)["outputs"]["sort"])
    assert m([3, 3, 3, 1])["outputs"]["sort"] == [1, 3, None, None]


def test_floats_from_lambdas_become_fractions():
    prog = rasp.numerical(rasp.Map(lambda x: x / 3 + 0.1, rasp.tokens)).named("third")
    m = hardwire.from_rasp(prog, vocab={1, 2}, max_len=3)
    assert m([1, 2])["outputs"]["third"] == [Fraction(13, 30), Fraction(23, 30)]
