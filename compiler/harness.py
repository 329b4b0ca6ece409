"""Running a model on inputs and comparing it with the interpreter: shared by the CLI and the Python API.

Nothing here imports torch at module level, so `hardwire compile` stays quick to start.
"""
from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from .errors import HardwireError

if TYPE_CHECKING:
    from runtime.model import Transformer

    from .sops import Program


def parse_input(text: str, vocab: list, words: bool = False) -> list:
    """Whitespace-separated tokens; integers where the vocabulary holds integers (all, for `vocab word`)."""
    out = []
    for word in text.split():
        if words:
            try:
                out.append(int(word))
            except ValueError:
                raise HardwireError(f"{word!r} is not an integer, and this program reads words") from None
            continue
        try:
            v = int(word)
            out.append(v if v in vocab else word)
        except ValueError:
            out.append(word)
    return out


def sample_input(rng: random.Random, vocab: list, max_len: int, distinct: bool, word_bits: int = 0,
                 exact: bool = False) -> list:
    """A random valid input of random length (1 to max_len; max_len when `exact`): what `hardwire check` feeds
    both sides."""
    if word_bits:
        half = 1 << (word_bits - 1)
        return [rng.randint(-half, half - 1) for _ in range(max_len if exact else rng.randint(1, max_len))]
    n = max_len if exact else rng.randint(1, min(max_len, len(vocab)) if distinct else max_len)
    return rng.sample(vocab, n) if distinct else [rng.choice(vocab) for _ in range(n)]


def run_batch(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool = False,
              trace: str | None = None) -> list[dict]:
    """What `hardwire run --json` reports for each input, for a plain, looped or generating program.

    trace: for a looped program, a JSONL file that gets every register after every pass (of row 0).
    """
    if "generate" in model.config:
        from runtime.generate import generate
        return [{"input": x, "generated": g} for x, g in zip(batch, generate(model, batch))]
    if "loop" in model.config:
        from runtime.loop import run_loop, trace_writer
        with trace_writer(trace) as on_step:
            results = run_loop(model, batch, max_steps=max_steps, progress=progress, on_step=on_step)
        return [{"input": x, "outputs": r.outputs, "steps": r.steps, "halted": r.halted, "emitted": r.emitted}
                for x, r in zip(batch, results)]
    return [{"input": x, "outputs": r} for x, r in zip(batch, model.run(batch))]


def interpret_batch(prog: Program, batch: list[list], max_steps: int = 10_000) -> list[dict]:
    """The reference interpreter's answer in run_batch's shape, its values as the model decodes them
    (fractions as 'a/b' strings, tuples as lists), so the two compare with ==."""
    from .artifact import to_json
    from .interpret import execute, generate

    def js(values: list) -> list:
        return [to_json(v) for v in values]
    rows = []
    for x in batch:
        if prog.generate is not None:
            rows.append({"input": x, "generated": js(generate(prog, x))})
            continue
        r = execute(prog, x, max_steps)
        row = {"input": x, "outputs": {k: js(vs) for k, vs in r.outputs.items()}}
        if prog.loop is not None:
            row.update(steps=r.steps, halted=r.halted, emitted=js(r.emitted))
        rows.append(row)
    return rows


def compare(prog: Program, model: Transformer, samples: int, seed: int = 0, max_steps: int = 10_000) -> dict:
    """Model vs interpreter on `samples` random inputs of every length (what `hardwire check` reports):
    {"samples", "mismatches" (a count), "examples" (the first 5), "run_s"}."""
    from runtime.model import parse_value

    from .artifact import to_json
    from .interpret import execute, run
    rng = random.Random(seed)
    bits = prog.word_bits if prog.word_vocab else 0
    inputs = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, bits, prog.exact_len)
              for _ in range(samples)]
    t0 = time.perf_counter()
    got = []
    for i in range(0, len(inputs), 256):
        if prog.loop is not None:
            from runtime.loop import run_loop
            got += [{**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
                    for r in run_loop(model, inputs[i:i + 256], max_steps=max_steps)]
        else:
            got += model.run(inputs[i:i + 256])
    mismatches = []
    for x, g in zip(inputs, got):
        if prog.loop is not None:
            r = execute(prog, x, max_steps)
            want = {**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
        else:
            want = run(prog, x)
        g = {k: [parse_value(v) for v in vs] for k, vs in g.items()}
        if g != want:
            mismatches.append({"input": x, "model": {k: [to_json(v) for v in vs] for k, vs in g.items()},
                               "interpreter": {k: [to_json(v) for v in vs] for k, vs in want.items()}})
    return {"samples": len(inputs), "mismatches": len(mismatches), "examples": mismatches[:5],
            "run_s": round(time.perf_counter() - t0, 3)}
