"""programs/parity_cc.hw (after Chiang & Cholak) and the LayerNorm block it needs, against Python's own `%`."""
import functools
import random
from pathlib import Path

import pytest
import torch
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled, layer_norm_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "parity_cc.hw"


@functools.cache
def model(n: int, dtype: torch.dtype = torch.float32):
    prog = check_file(str(PROGRAM), {"n": n})
    compiled = compile_program(prog)
    return prog, compiled, from_compiled(compiled, "cpu", dtype)


@given(st.integers(1, 40).flatmap(lambda n: st.lists(st.integers(0, 1), min_size=n, max_size=n)))
@settings(max_examples=80)
def test_parity_matches_python(xs):
    prog, _, m = model(len(xs))
    want = [sum(xs) % 2 == 1] * len(xs)
    assert run(prog, xs)["parity"] == want      # the interpreter against Python
    assert m.run([xs])[0]["parity"] == want     # the compiled model against Python


def test_two_layers_and_constant_width():
    sizes = [model(n)[1].summary() for n in (8, 64, 512)]
    assert {(s["layers"], s["heads"], s["d_model"], s["d_mlp"]) for s in sizes} == {(2, 2, 11, 6)}


def test_layernorm_turns_the_thin_margin_into_a_clean_boolean():
    """Before the norm the margin is 1/(2n); after it the true/false dims are exactly one-hot."""
    n = 512
    _, _, m = model(n)
    rng = random.Random(0)
    batch = [[rng.randint(0, 1) for _ in range(n)] for _ in range(4)]
    ids, lengths = m.encode(batch)
    x = m(ids, lengths)
    dims = m.outputs["parity"]["dims"]
    z = x[:, 1:, dims]
    assert torch.allclose(z, z.round(), atol=1e-5) and set(z.round().sum(-1).flatten().tolist()) == {1.0}


@pytest.mark.parametrize("n", [2000])
def test_long_strings(n):
    rng = random.Random(n)
    batch = [[rng.randint(0, 1) for _ in range(n)] for _ in range(3)] + [[1] * n, [1] + [0] * (n - 1)]
    _, _, m = model(n)
    assert [o["parity"][0] for o in m.run(batch)] == [sum(xs) % 2 == 1 for xs in batch]


@pytest.mark.slow
@pytest.mark.parametrize("n", [10_000])
def test_very_long_strings(n):
    rng = random.Random(n)
    batch = [[rng.randint(0, 1) for _ in range(n)] for _ in range(2)]
    _, _, m = model(n)
    assert [o["parity"][0] for o in m.run(batch)] == [sum(xs) % 2 == 1 for xs in batch]


def test_inputs_must_have_exactly_n_bits():
    prog, _, m = model(8)
    for bad in ([1, 0, 1], [0] * 9):
        with pytest.raises(HardwireError, match="exact|max_len"):
            run(prog, bad)
        with pytest.raises(HardwireError, match="exact|max_len"):
            m.run([bad])


SOFT = """program soft
vocab {0, 1}
max_len 4
exact_len
m = aggregate(select(tokens, tokens, true), scalar(tokens)) - 1 / 8
output hard = layernorm(m, 0)
output soft = layernorm(m, 1 / 100)
"""


def test_layer_norm_pairs_with_and_without_epsilon():
    v = torch.tensor([[0.25, -0.25, 1e-6, -1e-6, 0.0, 0.0]])
    assert layer_norm_pairs(v, torch.tensor([0.0, 0.0, 0.0])).tolist() == [[1.0, -1.0, 1.0, -1.0, 0.0, 0.0]]
    y = layer_norm_pairs(v[:, :2], torch.tensor([0.01]))
    assert abs(y[0, 0].item() - 0.25 / (0.0625 + 0.01) ** 0.5) < 1e-6


def test_soft_layernorm_may_be_an_output_only():
    prog = check_source(SOFT)
    m = from_compiled(compile_program(prog), "cpu")
    for xs in ([0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]):
        out = m.run([xs])[0]
        assert out == run(prog, xs) and out["soft"] == out["hard"] == [sum(xs) / 4 > 1 / 8] * 4
    with pytest.raises(HardwireError, match="soft") as e:
        check_source(SOFT + "output bad = map(b -> not b, soft)\n")
    assert e.value.line == 8


@pytest.mark.parametrize("src, message", [
    ("m = aggregate(select(tokens, tokens, true), scalar(tokens))\noutput o = layernorm(m, 0)", "never be 0"),
    ("output o = layernorm(tokens, 0)", "scalar"),
    ("output o = layernorm(scalar(tokens) + 1, -1)", "non-negative"),
])
def test_layernorm_errors(src, message):
    with pytest.raises(HardwireError, match=message):
        check_source("program p\nvocab {0, 1}\nmax_len 4\nexact_len\n" + src + "\n")
