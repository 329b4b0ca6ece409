"""programs/add_lsb.hw: constant-depth addition, least significant digit first, against Python's own `+`."""
import functools
from pathlib import Path

import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings
from hypothesis import strategies as st

from hardwire.cli.main import main

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


# ---- add_cot (chain of thought, LSB first) and add_msb (most significant digit first, constant depth) ----

def lsb(x: int, n: int) -> list[int]:
    return [int(c) for c in reversed(str(x).rjust(n, "0"))]


@functools.cache
def compiled(name: str, n: int):
    bits = max((3 * n + 2).bit_length() + 1, 6)
    prog = check_file(str(PROGRAM.parent / f"{name}.hw"), {"n": n, "bits": bits})
    return prog, from_compiled(compile_program(prog), "cpu", torch.float32)


@given(st.data())
@settings(max_examples=60)
def test_chain_of_thought_sum_matches_python(data):
    from hardwire.compiler.interpret import generate as reference
    from hardwire.runtime.generate import generate
    n = data.draw(st.sampled_from([1, 2, 5, 8]))
    a, b = (data.draw(st.integers(0, 10 ** n - 1)) for _ in range(2))
    prog, model = compiled("add_cot", n)
    prompt = lsb(a, n) + ["+"] + lsb(b, n) + ["="]
    got = generate(model, [prompt])[0]
    assert len(got) == n + 1 and got == lsb(a + b, n + 1)  # every digit, the top one (the last carry) too
    assert reference(prog, prompt) == got


@given(st.data())
@settings(max_examples=60)
def test_msb_first_sum_matches_python(data):
    n = data.draw(st.sampled_from([1, 2, 5, 8]))
    a, b = (data.draw(st.integers(0, 10 ** n - 1)) for _ in range(2))
    prog, model = compiled("add_msb", n)
    x = lsb(a, n)[::-1] + ["+"] + lsb(b, n)[::-1]
    out = model.run([x])[0]
    assert out == run(prog, x)
    top = int(out["carry_out"][n + 1])  # at b_{n-1}, just after "+"
    assert int(str(top) + "".join(map(str, out["sum"][n + 1:]))) == a + b


def test_msb_first_pays_for_the_position_comparison():
    """add_msb's `indices > indices` head needs a one-hot position table: its width grows with n, add_lsb's not."""
    sizes = {name: [compile_program(compiled(name, n)[0]).summary()["d_model"] for n in (8, 64)]
             for name in ("add_lsb", "add_msb")}
    lsb_growth = sizes["add_lsb"][1] - sizes["add_lsb"][0]
    msb_growth = sizes["add_msb"][1] - sizes["add_msb"][0]
    assert msb_growth >= 2 * 56 and lsb_growth < 56
