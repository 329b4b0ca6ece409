"""hardwire.from_rasp on every program of Tracr's compiler/test_cases.py: equal to rasp.evaluate and to the expected
outputs, on the case's input and on random ones (skipped without the `[tracr]` extra)."""
from __future__ import annotations

import pytest

pytest.importorskip("tracr", reason="the RASP front end needs Tracr: pip install 'hardwire[tracr]'")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tracr.compiler import test_cases  # noqa: E402
from tracr.rasp import rasp  # noqa: E402

import hardwire  # noqa: E402
from hardwire.frontends.rasp import same_outputs  # noqa: E402

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
