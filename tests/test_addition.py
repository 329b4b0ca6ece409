"""programs/add_lsb.hw: constant-depth addition, least significant digit first, against Python's own `+`."""
import functools
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.artifact import compile_program
from compiler.cli import main
from compiler.elaborate import check_file
from compiler.interpret import run
from runtime.model import from_compiled

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "add_lsb.hw"


@functools.cache
def adder(n: int, bits: int):
    prog = check_file(str(PROGRAM), {"n": n, "bits": bits})
    return prog, from_compiled(compile_program(prog), "cpu", torch.float32)


def encode(a: int, b: int, n: int) -> list:
    digits = lambda x: [int(c) for c in reversed(str(x).rjust(n, "0"))]
    return digits(a) + ["+"] + digits(b)


def decode(out: dict, n: int) -> int:
    digits = out["sum"][n + 1:]
    return int("".join(map(str, reversed(digits)))) + int(out["carry_out"][-1]) * 10 ** n


@given(st.data())
@settings(max_examples=60)
def test_sum_matches_python(data):
    n = data.draw(st.sampled_from([1, 2, 5, 8]))
    a, b = (data.draw(st.integers(0, 10 ** n - 1)) for _ in range(2))
    prog, model = adder(n, 7)
    x = encode(a, b, n)
    out = model.run([x])[0]
    assert decode(out, n) == a + b
    assert decode(run(prog, x), n) == a + b  # the interpreter agrees with Python too


def test_carry_chains():
    n = 8
    _, model = adder(n, 7)
    cases = [(10 ** n - 1, 1), (10 ** n - 1, 10 ** n - 1), (0, 0), (5 * 10 ** (n - 1), 5 * 10 ** (n - 1)),
             (4999_9999, 1), (9999_0000, 1_0000)]
    outs = model.run([encode(a, b, n) for a, b in cases])
    assert [decode(o, n) for o in outs] == [a + b for a, b in cases]


def test_thousand_digit_operands_through_the_cli(tmp_path, capsys):
    out = tmp_path / "add.safetensors"
    assert main(["compile", str(PROGRAM), "--param", "n=1000", "--param", "bits=12", "-o", str(out), "--json"]) == 0
    import json
    info = json.loads(capsys.readouterr().out)
    assert info["d_model"] < 200 and info["d_mlp"] < 200
    a, b = int("7" * 1000), int("2" * 999 + "3")  # every digit pair sums to 9 but the lowest: one 1000-long carry
    x = encode(a, b, 1000)
    assert main(["run", str(out), "--input", " ".join(map(str, x)), "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["outputs"]
    assert decode(result, 1000) == a + b
