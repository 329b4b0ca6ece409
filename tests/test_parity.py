"""programs/parity_cot.hw: parity by chain of thought, against Python's own `%`, at short and long lengths."""
import functools
import random
from pathlib import Path

import pytest
import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import generate as reference
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.generate import generate
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings
from hypothesis import strategies as st

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "parity_cot.hw"


@functools.cache
def model(n: int, dtype: torch.dtype = torch.float32):
    bits = (2 * n + 1).bit_length() + 2
    prog = check_file(str(PROGRAM), {"n": n, "bits": bits})
    return prog, from_compiled(compile_program(prog), "cpu", dtype)


def running_parity(xs: list[int]) -> list[int]:
    out, p = [], 0
    for x in xs:
        p ^= x
        out.append(p)
    return out


@given(st.sampled_from([1, 4, 16]).flatmap(lambda n: st.lists(st.integers(0, 1), min_size=n, max_size=n)))
@settings(max_examples=60)
def test_running_parity_matches_python(xs):
    prog, m = model(len(xs))
    prompt = xs + ["="]
    got = generate(m, [prompt])[0]
    assert got == running_parity(xs) == reference(prog, prompt)


@pytest.mark.parametrize("n", [1000])
def test_long_strings(n):
    rng = random.Random(n)
    batch = [[rng.randint(0, 1) for _ in range(n)] for _ in range(4)]
    _, m = model(n)
    got = generate(m, [xs + ["="] for xs in batch])
    assert [g[-1] for g in got] == [sum(xs) % 2 for xs in batch]
    assert got == [running_parity(xs) for xs in batch]


@pytest.mark.slow
@pytest.mark.parametrize("n", [10_000, 100_000])
def test_very_long_strings(n):
    rng = random.Random(n)
    xs = [rng.randint(0, 1) for _ in range(n)]
    _, m = model(n)
    got = generate(m, [xs + ["="]])[0]
    assert got[-1] == sum(xs) % 2 and got == running_parity(xs)
