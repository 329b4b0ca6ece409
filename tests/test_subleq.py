"""The SUBLEQ computer (programs/subleq.hw): interpreter and compiled transformer against the emulator."""
import functools
import json
from pathlib import Path

import pytest
import torch
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.interpret import execute
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.loop import run_loop
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings

from hardwire.machines.subleq import asm as subleq_asm
from hardwire.machines.subleq import emulator as subleq_ref
from tests.machines import images

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "programs" / "subleq"
EXPECTED = json.loads((EXAMPLES / "expected.json").read_text())
CORPUS_HELLO = ROOT / "tests" / "data" / "subleq" / "hello.sq"  # a copy of ../shared/corpus/subleq


@functools.cache
def computer(mem: int, bits: int, dtype: torch.dtype = torch.float32):
    prog = check_file(str(ROOT / "programs" / "subleq.hw"), {"mem": mem, "bits": bits})
    return prog, from_compiled(compile_program(prog), "cpu", dtype)


@given(images())
@settings(max_examples=40)
def test_interpreter_matches_emulator_every_step(case):
    mem, bits, image = case
    prog, _ = computer(mem, bits)
    final, trace = subleq_ref.run(image, mem=mem, bits=bits, max_steps=200, trace=True)
    seen = []
    result = execute(prog, image, max_steps=200, on_step=lambda t, regs: seen.append((regs["m"], regs["pc"][0])))
    assert [(s.mem, s.pc) for s in trace] == seen
    assert (result.steps, result.halted, result.emitted) == (final.steps, final.halted, final.output)
    assert result.outputs["memory"] == final.mem


def transformer_matches_emulator_every_step(case):
    """The compiled computer's memory and pc after every pass, its steps, halting and output: the emulator's."""
    mem, bits, image = case
    _, model = computer(mem, bits)
    final, trace = subleq_ref.run(image, mem=mem, bits=bits, max_steps=200, trace=True)
    seen = []
    got = run_loop(model, [image], max_steps=200, on_step=lambda t, regs: seen.append((regs["m"], regs["pc"][0])))[0]
    assert [(s.mem, s.pc) for s in trace] == seen
    assert (got.steps, got.halted, got.emitted) == (final.steps, final.halted, final.output)
    assert got.outputs["memory"] == final.mem


@given(images())
@settings(max_examples=25)  # each runs up to 200 passes: 2 to 3 minutes at 100; the slow test runs 200
def test_transformer_matches_emulator_every_step(case):
    transformer_matches_emulator_every_step(case)


@pytest.mark.slow
@given(images())
@settings(max_examples=200, deadline=None)
def test_transformer_matches_emulator_every_step_many(case):
    transformer_matches_emulator_every_step(case)


def test_batch_of_machines_halting_at_different_steps():
    mem, bits = 16, 8
    _, model = computer(mem, bits)
    batch = [[0, 0, -1] + [0] * 13,          # halts after 1 step
             [0] * 16,                        # never halts: 0 0 0 jumps to 0
             [9, -1, 3, 0, 0, -1] + [0] * 3 + [42] + [0] * 6]   # outputs 42, then halts
    got = run_loop(model, batch, max_steps=50)
    for image, g in zip(batch, got):
        want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=50)
        assert (g.steps, g.halted, g.emitted, g.outputs["memory"]) == (want.steps, want.halted, want.output, want.mem)
    assert [g.steps for g in got] == [1, 50, 2]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_programs_on_the_transformer(name):
    image = subleq_asm.assemble_file(str(EXAMPLES / name), bits=16)
    image += [0] * (256 - len(image))
    _, model = computer(256, 16)
    got = run_loop(model, [image], max_steps=5000)[0]
    want = subleq_ref.run(image, mem=256, bits=16, max_steps=5000)
    assert got.halted and got.emitted == EXPECTED[name]["output"] == want.output
    assert got.outputs["memory"] == want.mem and got.steps == want.steps


def test_corpus_hello_on_the_transformer():
    image = subleq_ref.load_image(str(CORPUS_HELLO), 256, 16)
    image += [0] * (256 - len(image))
    _, model = computer(256, 16)
    got = run_loop(model, [image], max_steps=1000)[0]
    assert subleq_ref.text(got.emitted) == "Hello, world!\n" and got.steps == 71 and got.halted


@pytest.mark.slow
def test_a_million_steps_exactly():
    """A program that never halts (it counts a cell up and wraps around) runs 10^6 passes exactly."""
    mem, bits = 16, 8
    # 0: mem[15] -= mem[14] (14 holds -1, so mem[15] counts up, wrapping); jump to 0 if <= 0 else go to 3
    # 3: mem[13] -= mem[13] -> 0 -> jump to 0
    image = [14, 15, 0, 13, 13, 0] + [0] * 7 + [5, -1, 0]
    _, model = computer(mem, bits)
    got = run_loop(model, [image], max_steps=10 ** 6, progress=True)[0]
    want = subleq_ref.run(image, mem=mem, bits=bits, max_steps=10 ** 6)
    assert not got.halted and got.steps == want.steps == 10 ** 6
    assert got.outputs["memory"] == want.mem
