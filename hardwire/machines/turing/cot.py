"""`hardwire tm --mode cot`: the machine's steps generated one token each, by a 4-layer transformer whose tokens
carry the head's cell as a word (cot_words.py; `--encoding cells`: the one-layer program whose vocabulary has a
token per cell, tm.cot_program)."""
from __future__ import annotations

import math
import sys
import time

from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import LONG_MAX_LEN
from hardwire.machines.turing import cot_words
from hardwire.machines.turing import tm as tmlib

MAX_TOKENS = 65_536          # --encoding cells: its float32 argument (proofs/turing_cot.md) holds to about 78,000
MAX_WORD_TOKENS = LONG_MAX_LEN   # words: the position rows are a formula past 2^20 tokens; float64 holds the head


def parse_step(tok: str) -> tuple[str, int, int, int]:
    """'B1R-3' -> (state B, wrote 1, moved +1, head now at -3)."""
    return tok[0], int(tok[1]), 1 if tok[2] == "R" else -1, int(tok[3:])


def replay(prompt: list[int], generated: list[str]) -> tuple[dict[int, int], int, int]:
    """The tape, head and step count that the generated tokens record."""
    tape = {c: s for c, s in enumerate(prompt) if s}
    head, steps = 0, 0
    for tok in generated:
        if tok == "halt":
            break
        _, write, move, head = parse_step(tok)
        cell = head - move
        if write:
            tape[cell] = write
        else:
            tape.pop(cell, None)
        steps += 1
    return tape, head, steps


def float32_holds_latest(bits: int, max_len: int) -> bool:
    """proofs/turing_cot.md, "Precision": the word `latest` head's float32 rounding stays below 1 while
    (B + 2)^2 u lambda (L + 1) <= 1, lambda = ln(L + 1) + 30 + B ln 2."""
    lam = math.log(max_len + 1) + 30 + bits * math.log(2)
    return (bits + 2) ** 2 * 2.0 ** -24 * lam * (max_len + 1) <= 1


def word_model(source: str, bits: int, max_len: int, asked: str | None, device: str | None):
    """(model, dtype, weights key) for the word program: float32 (its weight file cached) when the MLPs' sums and
    the latest head's argument hold in it, else float64 from the compile itself, with a note on stderr."""
    import torch

    from hardwire.cache import cached_source, model_cache_path
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.compiler.precision import choose_dtype, fit
    from hardwire.runtime.model import from_compiled, load
    hw = cached_source("turing_cot_words", source)
    weights = model_cache_path(str(hw), {})
    head32 = float32_holds_latest(bits, max_len)
    if asked != "float64" and weights.exists() and (head32 or asked == "float32"):
        return load(str(weights), device, torch.float32), "float32", weights.name
    compiled = compile_program(check_file(str(hw), {}), positions="formula")
    dtype, note = choose_dtype("the chain of thought", fit(compiled.tensors, compiled.config), asked)
    if dtype == "float32" and asked is None and not head32:
        dtype, note = "float64", (f"note: the chain of thought runs in float64: {max_len} tokens of {bits}-bit words "
                                  "are past its latest head's float32 argument (proofs/turing_cot.md)")
    if note:
        print(f"hardwire: {note}", file=sys.stderr)
    if dtype == "float32":
        compiled.save(str(weights))
        return load(str(weights), device, torch.float32), dtype, weights.name
    return from_compiled(compiled, device, torch.float64), dtype, weights.name


def run_cot(a, machine: tmlib.Machine, tape_in: list[int], ref: tmlib.Run, ref_s: float) -> dict:
    """Generate the run, one token per step, and compare it with the simulator's."""
    import torch

    from hardwire import checkpoint
    from hardwire.cli import long_run
    from hardwire.runtime.generate import generate
    from hardwire.runtime.loop_state import LongRun
    from hardwire.runtime.model import load
    words = getattr(a, "encoding", "words") == "words"
    prompt = tape_in or [0]
    cells, offset = tmlib.window_for(machine, prompt, ref, a.tape)
    lo, hi = -offset, cells - offset - 1
    max_len = tmlib.cot_length(len(prompt), ref)  # ref ran at most --max-steps steps
    cap = MAX_WORD_TOKENS if words else MAX_TOKENS
    if max_len > cap:
        raise HardwireError(f"a chain of thought of {max_len} tokens is more than {cap}; lower --max-steps "
                            "(long runs: --mode loop)")
    if words:
        enc = cot_words.encoding(machine, lo, hi, max_len)
        source = cot_words.cot_word_program(machine, len(prompt), lo, hi, max_len)
        model, dtype, key = word_model(source, enc.bits, max_len, a.dtype, a.device)
        given = enc.prompt(prompt)
    else:
        from hardwire.cache import cached_generated_model
        dtype = a.dtype or "float32"
        weights = cached_generated_model("turing_cot", tmlib.cot_program(machine, len(prompt), lo, hi, max_len))
        model = load(weights, a.device, torch.float64 if dtype == "float64" else torch.float32)
        key, given = long_run.model_key(weights), list(prompt)
    from hardwire.runtime.index_decode import native_why_not
    from hardwire.runtime.loop_state import DecodeState
    dense = getattr(a, "dense", False)
    native = not dense and native_why_not(model) is None
    # proven heads as lookups (runtime/index_attention.py) unless the dense reference is asked for; checkpoints are
    # the native kernel's state, or (where it cannot run) the soft decoder's tokens
    attention = "soft" if dense or (getattr(a, "checkpoint", None) and not native) else "index"
    if attention == "index":
        from hardwire.runtime.memory import index_fits
        index_fits(model, len(given), "the chain of thought", "lower --max-steps")
    else:
        long_run.fits(model, "the chain of thought", "lower --max-steps (or decode without --dense/--checkpoint)")
    what = f"tm {machine.spec} --mode cot ({cells} cells, {max_len} tokens)"
    ident = checkpoint.identity(kind="tm cot", model=key, prompt=given, dtype=dtype)
    done = long_run.cot_resume(a, what, ident)
    resume = done if isinstance(done, DecodeState) else None
    if resume is not None and not (native and attention == "index"):
        raise HardwireError(f"--resume {a.resume}: the checkpoint is the native index decoder's, which cannot "
                            f"decode this run ({'--dense' if dense else native_why_not(model)})")
    done = [] if resume is not None else done
    saver = checkpoint.Saver(getattr(a, "checkpoint", None), what, ident)
    if attention == "index":
        save = (lambda st: saver.write({"tokens": len(st.tokens), "pos": st.pos, "done": st.done,
                                        "decoder": "native index"},
                                       tensors={"tokens": st.tokens, "x": st.x, "state": st.state, "have": st.have}))
    else:
        save = lambda g: saver.write({"tokens": done + g})  # noqa: E731
    resumed_at = len(done) + (len(resume.tokens) if resume is not None else 0)
    long = LongRun(resume=resume, save=save if saver.path else None, every_s=getattr(a, "checkpoint_every", 60),
                   total=max_len - len(prompt), desc="tokens", done=resumed_at)
    t1 = time.perf_counter()
    gen = generate(model, [given + done], fast=False if dense else None, attention=attention,
                   progress=long_run.progress_mode(a), long=long, arrays=words)[0]
    run_s = time.perf_counter() - t1
    heads = []
    if attention == "index":
        from hardwire.runtime.index_attention import Rule, derive
        decoder = "native index" if native else "torch index"
        heads = [{"rule": r.kind, "margin": round(r.margin, 3), "score_error": float(f"{r.score_error:.3g}"),
                  "leak": float(f"{r.leak:.3g}")} if isinstance(r, Rule) else {"refused": r.why}
                 for r in derive(model)]
    else:
        decoder = "dense" if dense else "soft"
    if words:   # every token against the simulator's word, and the tape the tokens record
        import numpy as np
        gen = np.concatenate([np.asarray(done, np.int64), np.asarray(gen, np.int64)])
        t2 = time.perf_counter()
        want = cot_words.simulated_words(machine, prompt, enc, ref.steps)
        tape, head, state, steps = cot_words.replay_words(enc, prompt, gen)
        check_s = time.perf_counter() - t2
        every = len(gen) == len(want) and bool(np.array_equal(gen, want))
        halted = bool(len(gen)) and (int(gen[-1]) == enc.halt or state == tmlib.HALT)
    else:
        gen = done + gen
        halted = bool(gen) and (gen[-1] == "halt" or gen[-1][0] == tmlib.HALT)
        tape, head, steps = replay(prompt, gen)
        every, check_s = None, None
    same = (steps == ref.steps and halted == ref.halted and head == ref.head and every is not False
            and {c: v for c, v in tape.items() if v} == {c: v for c, v in ref.tape.items() if v})
    used = sorted(tape)
    shown = "".join(str(tape.get(c, 0)) for c in range(used[0], used[-1] + 1)) if used else ""
    cfg = model.config
    return {"spec": machine.spec, "mode": "cot", "steps": steps, "halted": halted, "ones": len(tape),
            "tape": shown, "head": head, "matches_reference": same, "tokens": len(gen),
            "layers": cfg["n_layers"], "encoding": "words" if words else "cells", "d_model": cfg["d_model"],
            "dtype": dtype, "decoder": decoder, "run_s": round(run_s, 3), "reference_s": round(ref_s, 3),
            **({"every_token_matches": every, "check_s": round(check_s, 3)} if every is not None else {}),
            **({"heads": heads} if heads else {}),
            **long_run.report(a, resumed_at, saver)}

