"""Generated files that are committed stay what their generators write: bench/results/sizes.json is regenerated
(compiled, not checked) and compared; bench/results/lengths.json records the longest length verified, the slow
tests' included. No time or speed is compared."""
import json
from pathlib import Path

import pytest

from hardwire.bench import demo
from hardwire.bench import lengths as bench

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
NAMES = sorted(p.stem for p in (ROOT / "programs").glob("*.hw"))


def test_sizes_json_lists_every_program():
    committed = json.loads((RESULTS / "sizes.json").read_text())
    assert sorted(committed) == NAMES, "rerun `make demo` (or compiler.demo.sizes) to rewrite bench/results/sizes.json"


@pytest.mark.parametrize("name", NAMES)
def test_sizes_json_is_what_make_demo_writes(name):
    """Each program compiled at `make demo`'s params has the sizes sizes.json commits (regenerate: `make demo`)."""
    committed = json.loads((RESULTS / "sizes.json").read_text())[name]
    assert demo.sizes(ROOT, [name])[name] == committed


def test_lengths_json_records_the_longest_length_verified():
    """Every construction: longest_verified = the longest of the sweep's exact lengths and of the slow tests that
    bench.LONGER_TESTS names, and each named test exists with that length among its parameters."""
    data = json.loads((RESULTS / "lengths.json").read_text())
    assert [c["program"] for c in data["constructions"]] == list(bench.LENGTH_PLAN)
    for c in data["constructions"]:
        assert c == bench.with_longer_tests(c), c["program"]
        assert c["verified_by_tests"] == bench.LONGER_TESTS.get(c["program"], [])
    parity_cot = next(c for c in data["constructions"] if c["program"] == "parity_cot")
    assert parity_cot["longest_verified"]["float32"] == 100_000
    for tests in bench.LONGER_TESTS.values():
        for t in tests:
            path, _, node = t["test"].partition("::")
            func, _, param = node.partition("[")
            text = (ROOT / path).read_text()
            assert f"def {func}(" in text and "@pytest.mark.slow" in text.split(f"def {func}(")[0].rsplit("\n\n", 1)[-1]
            assert f"{int(param.rstrip(']')):_}" in text.split(f"def {func}(")[0].rsplit("\n\n", 1)[-1], t
