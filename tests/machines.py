"""Hypothesis strategies and builders shared by the SUBLEQ, Turing machine and fast-path tests."""
from __future__ import annotations

import torch
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import Transformer, from_compiled
from hypothesis import strategies as st

from hardwire.machines.turing import tm as tmlib


@st.composite
def images(draw, sizes=((8, 4), (16, 5), (16, 8))):
    """SUBLEQ (mem, bits, image): random programs, not only well-behaved ones: any words, biased toward
    addresses and -1."""
    mem, bits = draw(st.sampled_from(sizes))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    word = st.one_of(st.integers(-1, min(mem + 1, hi)), st.integers(lo, hi))
    image = draw(st.lists(word, min_size=1, max_size=mem))
    return mem, bits, image + [0] * (mem - len(image))


@st.composite
def machines(draw):
    """(spec, input tape): 2-5 states, 2-3 symbols, about one undefined transition in 20, halting or not."""
    n, k = draw(st.integers(2, 5)), draw(st.integers(2, 3))
    states = [chr(ord("A") + i) for i in range(n)]

    def triple():
        if draw(st.integers(0, 19)) == 0:
            return "---"
        nxt = draw(st.sampled_from(states + ["Z"] * (1 if draw(st.booleans()) else 0) or states))
        return f"{draw(st.integers(0, k - 1))}{draw(st.sampled_from('LR'))}{nxt}"
    spec = "_".join("".join(triple() for _ in range(k)) for _ in range(n))
    return spec, draw(st.lists(st.integers(0, k - 1), max_size=6))


def looped_tm(spec: str, tape_in: list[int], steps: int, trace: list | None = None
              ) -> tuple[Transformer, list[int], tmlib.Run, int]:
    """The looped transformer for a machine, sized for `steps` steps of the simulator: (model, input tokens,
    the simulator's run, the offset of cell 0). trace: filled by the simulator, one entry per step."""
    machine = tmlib.parse_spec(spec)
    ref = tmlib.simulate(machine, tape_in, max_steps=steps, trace=trace)
    cells, offset = tmlib.window_for(machine, tape_in, ref, None)
    model = from_compiled(compile_program(check_source(tmlib.loop_program(machine, cells, offset), "generated")),
                          "cpu")
    tokens = [0] * cells
    for i, s in enumerate(tape_in):
        tokens[i + offset] = s
    return model, tokens, ref, offset


def cot_tm(spec: str, tape_in: list[int], steps: int, words: bool = False, dtype: torch.dtype = torch.float32
           ) -> tuple[Transformer, list, list]:
    """The chain-of-thought transformer for a machine, sized for its run of at most `steps` steps (one-hot cell
    tokens, or with `words` the default word tokens): (model, the prompt it reads, the tokens it must generate,
    from the simulator's trace). An empty tape is the tape [0]."""
    from hardwire.machines.turing import cot_words
    machine = tmlib.parse_spec(spec)
    tape = tape_in or [0]
    trace: list = []
    ref = tmlib.simulate(machine, tape, max_steps=steps, trace=trace)
    cells, offset = tmlib.window_for(machine, tape, ref, None)
    lo, hi, max_len = -offset, cells - offset - 1, tmlib.cot_length(len(tape), ref)
    if not words:
        text = tmlib.cot_program(machine, len(tape), lo, hi, max_len)
        model = from_compiled(compile_program(check_source(text, "generated")), "cpu", dtype)
        return model, tape, tmlib.cot_tokens(trace, ref)
    text = cot_words.cot_word_program(machine, len(tape), lo, hi, max_len)
    model = from_compiled(compile_program(check_source(text, "generated"), positions="formula"), "cpu", dtype)
    enc = cot_words.encoding(machine, lo, hi, max_len)
    return model, enc.prompt(tape), tmlib.cot_tokens(trace, ref, lambda *step: cot_words.step_word(enc, *step),
                                                     enc.halt)
