"""Running a model on inputs and comparing it with the interpreter: shared by the CLI and the Python API.

Nothing here imports torch at module level, so `hardwire compile` stays quick to start.
"""
from __future__ import annotations

import random
import time
from fractions import Fraction
from typing import TYPE_CHECKING

from hardwire.compiler.core.errors import HardwireError

if TYPE_CHECKING:
    from hardwire.compiler.core.sops import Program
    from hardwire.runtime.model import Transformer


def _fraction(word: str) -> Fraction | None:
    """'1/3' or '-1/8' as a fraction, or None (a whole fraction is an integer token, as in the language)."""
    num, _, den = word.partition("/")
    try:
        v = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        return None
    return v if v.denominator != 1 else None


def parse_input(text: str, vocab: list, words: bool = False) -> list:
    """Whitespace-separated tokens; integers where the vocabulary holds integers (all, for `vocab word`), fractions
    ("1/3") where it holds fractions, true
    and false where it holds booleans (and not the strings "true", "false"), strings otherwise."""
    from hardwire.compiler.artifact import from_json
    vocab = [from_json(v) if isinstance(v, dict) else v for v in vocab]  # a fraction token is {"frac": "1/3"}
    kinds = {(type(v), v) for v in vocab}  # by type: 1 and true are different tokens
    out = []
    for word in text.split():
        frac = _fraction(word) if "/" in word else None
        if frac is not None and (Fraction, frac) in kinds:
            out.append(frac)
            continue
        if words:
            try:
                out.append(int(word))
            except ValueError:
                raise HardwireError(f"{word!r} is not an integer, and this program reads words") from None
            continue
        try:
            v = int(word)
            out.append(v if (int, v) in kinds else word)
        except ValueError:
            boolean = {"true": True, "false": False}.get(word)
            out.append(boolean if boolean is not None and (bool, boolean) in kinds and (str, word) not in kinds
                       else word)
    return out


def json_row(row: dict) -> dict:
    """A run_batch or interpret_batch row as `--json` prints it (the input's tokens too): every value in
    compiler/artifact.to_json's encoding, the weight file's (integers, booleans, strings and null as they are; a
    fraction {"frac": "5/3"}, a tuple {"tuple": [...]}), so that "1/2" the string and 1/2 the fraction stay apart;
    artifact.from_json reads it back. docs/tutorial.md shows it."""
    from hardwire.compiler.artifact import to_json

    def enc(x):
        if isinstance(x, dict):
            return {k: enc(v) for k, v in x.items()}
        if isinstance(x, list):
            return [enc(v) for v in x]
        return to_json(x) if isinstance(x, (Fraction, tuple)) else x
    return enc(row)


def same_values(got: dict[str, list], want: dict[str, list]) -> bool:
    """Equal outputs, by type and value (0 is not false, "1/2" is not 1/2), position by position."""
    from hardwire.compiler.core.sops import value_key
    return got.keys() == want.keys() and all(
        len(got[k]) == len(want[k]) and all(value_key(a) == value_key(b) for a, b in zip(got[k], want[k]))
        for k in got)


def sample_input(rng: random.Random, vocab: list, max_len: int, distinct: bool, word_bits: int = 0,
                 exact: bool = False) -> list:
    """A random valid input of random length (1 to max_len; max_len when `exact`): what `hardwire check` feeds
    both sides."""
    if word_bits:
        half = 1 << (word_bits - 1)
        n = max_len if exact else rng.randint(1, min(max_len, 2 * half) if distinct else max_len)
        return rng.sample(range(-half, half), n) if distinct else [rng.randint(-half, half - 1) for _ in range(n)]
    n = max_len if exact else rng.randint(1, min(max_len, len(vocab)) if distinct else max_len)
    return rng.sample(vocab, n) if distinct else [rng.choice(vocab) for _ in range(n)]


def run_batch(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool = False,
              trace: str | None = None) -> list[dict]:
    """What `hardwire run` reports for each input, for a plain, looped or generating program, its values typed
    (Fraction, int, str, bool, tuple, None: as the interpreter computes them); `--json` prints json_row of it.

    trace: for a looped program, a JSONL file that gets every register after every pass (of row 0).
    Every batch runs in parts that fit in memory (runtime/memory.py); a loop's parts as large as memory allows.
    """
    from hardwire.runtime.memory import batches
    if "generate" in model.config:
        from hardwire.runtime.generate import generate
        return [{"input": x, "generated": list(g)} for part in batches(model, batch) for x, g in
                zip(part, generate(model, part))]
    if "loop" in model.config:
        from hardwire.runtime.loop import run_loop, trace_writer
        results = []
        with trace_writer(trace) as on_step:
            for i, part in enumerate(batches(model, batch, most=len(batch))):  # the trace follows the batch's row 0
                results += run_loop(model, part, max_steps=max_steps, progress=progress,
                                    on_step=on_step if i == 0 else None)
        return [{"input": x, "outputs": {k: list(vs) for k, vs in r.outputs.items()}, "steps": r.steps,
                 "halted": r.halted, "emitted": list(r.emitted)} for x, r in zip(batch, results)]
    return [{"input": x, "outputs": {k: list(vs) for k, vs in r.items()}} for part in batches(model, batch)
            for x, r in zip(part, model.run(part))]


def interpret_batch(prog: Program, batch: list[list], max_steps: int = 10_000) -> list[dict]:
    """The reference interpreter's answer in run_batch's shape and types, so the two compare with == (which holds
    1 == True: same_values tells them apart)."""
    from hardwire.compiler.interpret import execute, generate
    js = list
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


def compare(prog: Program, model: Transformer, samples: int, seed: int = 0, max_steps: int = 10_000,
            memory: int | None = None) -> dict:
    """Model vs interpreter on `samples` random inputs of every length (what `hardwire check` reports):
    {"samples", "mismatches" (a count), "examples" (the first 5, typed values: json_row for --json), "run_s"}.
    A generating program is compared on its outputs at the prompt's positions and on the tokens it generates
    ("(generated)"). The inputs run in batches of at most 256 that fit in `memory` bytes (default:
    runtime.memory.budget_bytes); an input that alone does not fit is refused, with the estimate, before anything
    runs."""
    from hardwire.compiler.interpret import execute, generate, run
    rng = random.Random(seed)
    bits = prog.word_bits if prog.word_vocab else 0
    inputs = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, bits, prog.exact_len)
              for _ in range(samples)]
    from hardwire.runtime.memory import batches
    chunks = batches(model, inputs, 256, memory, "checking")
    t0 = time.perf_counter()
    got = []
    for chunk in chunks:
        if prog.loop is not None:
            from hardwire.runtime.loop import run_loop
            got += [{**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
                    for r in run_loop(model, chunk, max_steps=max_steps)]
        else:
            rows = model.run(chunk)
            if prog.generate is not None:
                from hardwire.runtime.generate import generate as generate_tokens
                rows = [{**r, "(generated)": g} for r, g in zip(rows, generate_tokens(model, chunk))]
            got += rows
    mismatches = []
    for x, g in zip(inputs, got):
        if prog.loop is not None:
            r = execute(prog, x, max_steps)
            want = {**r.outputs, "(steps)": [r.steps], "(halted)": [r.halted], "(emitted)": r.emitted}
        else:
            want = run(prog, x)
            if prog.generate is not None:
                want["(generated)"] = generate(prog, x)
        if not same_values(g, want):
            mismatches.append({"input": x, "model": {k: list(vs) for k, vs in g.items()},
                               "interpreter": {k: list(vs) for k, vs in want.items()}})
    return {"samples": len(inputs), "mismatches": len(mismatches), "examples": mismatches[:5],
            "run_s": round(time.perf_counter() - t0, 3)}
