"""`hardwire subleq IMAGE --mode cot`: the trace-mode SUBLEQ (hardwire/machines/subleq/cot.py), decoded with proven
heads as table lookups, its trace read back and compared with the emulator's run."""
from __future__ import annotations

import sys
import time

from hardwire.compiler.core.errors import HardwireError
from hardwire.machines.subleq import cot
from hardwire.machines.subleq import emulator as subleq_ref

PROBE_LEN = 64   # the compile that measures the model (its position rows are a formula: no part grows with max_len)


def check_args(a) -> None:
    """Refuse, in one line, what the trace mode does not do or cannot hold."""
    from hardwire.runtime.index_attention import CODE_CAP
    for flag, given in (("--trace", a.trace), ("--checkpoint", a.checkpoint), ("--resume", a.resume)):
        if given is not None:
            raise HardwireError(f"{flag} is for --mode loop (the trace mode's generated tokens are its trace, and "
                                "its decoder keeps no checkpoints)")
    if not 2 <= a.bits <= 47:
        raise HardwireError(f"--bits {a.bits}: the trace mode takes 2 to 47-bit words (its tokens have two bits "
                            "more, and float64 holds word arithmetic to 49 bits)")
    if a.mem < 1:
        raise HardwireError(f"--mem {a.mem}: memory holds at least 1 word")
    if a.mem > 2 ** (a.bits - 1):
        raise HardwireError(f"--mem {a.mem} needs addresses up to {a.mem - 1}, which {a.bits}-bit words cannot "
                            f"hold (at most {2 ** (a.bits - 1)} words); raise --bits or lower --mem")
    if a.mem > cot.max_mem():
        raise HardwireError(f"--mem {a.mem}: the trace mode's heads are proven by listing every address a query "
                            f"can name (mem + 1 codes, at most {CODE_CAP}), so memory holds at most {cot.max_mem()} "
                            "words")


def estimate_bytes(fixed_params: int, d_model: int, max_len: int, key_codes: int, value_dims: int,
                   prompt_len: int, size: int) -> int:
    """Bytes a run takes at most, before anything of its size is allocated: the weights three times (the compile's
    arrays, the model, the decoder's compacted plan; the position rows are a formula, two rows whatever max_len);
    the latest tables (one slot per key code and a value vector each); the prefill's residual and scores; and the
    tokens (memory.TOKEN_BYTES each)."""
    weights = 3 * fixed_params * 8
    tables = key_codes * value_dims * size
    prefill = (prompt_len + 1) * (6 * d_model + 3 * 512) * size
    from hardwire.runtime.memory import TOKEN_BYTES
    return weights + tables + prefill + TOKEN_BYTES * (max_len + 1)


def load_model(a, prompt_len: int, steps: int):
    """The compiled model for this run, its dtype and why it was chosen (a note, or ""): refused first when its
    estimate exceeds the memory this run may use."""
    import torch

    from hardwire.cache import cached_source
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.compiler.precision import choose_dtype, fit
    from hardwire.runtime.memory import budget_bytes
    from hardwire.runtime.model import from_compiled
    max_len = cot.max_len_for(prompt_len, steps)
    probe = compile_program(check_file(str(cached_source("subleq_cot", cot.cot_program(a.mem, a.bits, PROBE_LEN))),
                                       {}), positions="formula")
    cfg = probe.config
    d = cfg["d_model"]
    fixed = sum(int(t.size) for t in probe.tensors.values())
    heads = sum(layer["heads"] for layer in cfg["layers"])
    need = estimate_bytes(fixed, d, max_len, heads * (a.mem + 2), a.bits + 3, prompt_len, 8)
    budget = budget_bytes(a.device or "cpu")
    if need > budget:
        raise HardwireError(f"the trace of {steps} steps needs {max_len} positions, about {need / 2**30:.1f} GiB "
                            f"(the weights, the heads' tables and the tokens), more than the "
                            f"{budget / 2**30:.1f} GiB this run may use; lower --max-steps or --mem")
    compiled = probe if max_len == PROBE_LEN else compile_program(
        check_file(str(cached_source("subleq_cot", cot.cot_program(a.mem, a.bits, max_len))), {}), positions="formula")
    dtype, note = choose_dtype("the trace-mode SUBLEQ", fit(compiled.tensors, compiled.config), a.dtype)
    if dtype == "float32":
        model = from_compiled(compiled, a.device, torch.float32)
        if a.dtype is None and unproven(model):
            dtype, note = "float64", (f"note: the trace mode runs in float64: at {max_len} positions float32 no "
                                      "longer holds every `latest` head's proof (docs/subleq.md, \"Trace mode\")")
        else:
            return model, dtype, note
    return from_compiled(compiled, a.device, torch.float64), dtype, note


def unproven(model) -> list[str]:
    """Each head runtime/index_attention.py does not prove, as `layer L head H: why` (layers from 1)."""
    from hardwire.runtime.index_attention import Refusal, derive
    return [f"layer {r.layer + 1} head {r.head}: {r.why}" for r in derive(model) if isinstance(r, Refusal)]


def load_image(a) -> list[int]:
    """The image IMAGE holds (assembled, with --asm), checked against --mem: what both modes run."""
    from hardwire.machines.subleq import asm as subleq_asm
    if a.asm:
        image = subleq_asm.assemble_file(a.image, a.bits)
        if len(image) > a.mem:
            raise HardwireError(f"the program assembles to {len(image)} words but memory holds only {a.mem}; "
                                "raise --mem", a.image)
    else:
        image = subleq_ref.load_image(a.image, a.mem, a.bits)
    if not image:
        raise HardwireError("the image holds no words (all-zero memory loops forever at address 0)", a.image)
    return image


def cmd_subleq_cot(a) -> dict:
    """Run the image as a generated trace and compare the run it records with the emulator's."""
    from hardwire.cli import long_run
    from hardwire.runtime.generate import generate
    from hardwire.runtime.index_decode import proven
    check_args(a)
    image = load_image(a)
    t0 = time.perf_counter()
    want = subleq_ref.run(image, mem=a.mem, bits=a.bits, max_steps=a.max_steps)   # its steps size the positions
    t1 = time.perf_counter()
    given = cot.prompt(image, a.bits)
    model, dtype, note = load_model(a, len(given), want.steps)
    if note:
        print(f"hardwire: {note}", file=sys.stderr)
    t1, load_s, ref_s = time.perf_counter(), time.perf_counter() - t1, t1 - t0
    rules = proven(model)
    refused = unproven(model)
    if refused:   # still decoded, by the softmax over a KV cache; the comparison below says whether it held
        print(f"hardwire: note: {len(refused)} of {len(refused) + len(rules)} heads are not proven in {dtype} at "
              f"{model.config['max_len']} positions ({refused[0]}), so they run the softmax; --dtype float64 "
              "proves them", file=sys.stderr)
    from hardwire.runtime.index_decode import native_why_not
    dense = getattr(a, "dense", False)   # the plain dense pass over a KV cache: the reference decoder
    kernel = None if dense else "native" if native_why_not(model) is None else "torch"
    t2 = time.perf_counter()   # the proof is done
    if kernel == "native":   # numba loads the kernel from its disk cache (or compiles it) here, not in the run
        generate(model, [given], max_len=len(given) + 1, attention="index")
    t_run = time.perf_counter()
    load_s += t_run - t2
    gen = generate(model, [given], max_len=len(given) + 3 * want.steps, fast=False if dense else None,
                   attention="soft" if dense else "index", progress=long_run.progress_mode(a))[0]
    t3 = time.perf_counter()
    got = cot.replay(image, a.mem, a.bits, gen)
    # a halted trace ends in STOP, which carries no pc; a run the step limit stopped ends in PC(the next pc)
    same = (got.steps, got.halted, got.output, got.mem) == (want.steps, want.halted, want.output, want.mem) and \
        (got.halted or got.pc == want.pc)
    cfg = model.config
    return {"mode": "cot", "steps": got.steps, "halted": got.halted, "output": got.output,
            "text": subleq_ref.text(got.output), "memory": got.mem, "matches_reference": same, "mem": a.mem,
            "bits": a.bits, "dtype": dtype, "device": str(next(model.parameters()).device),
            "path": "dense" if dense else "index", "kernel": kernel,
            "prompt_tokens": len(given), "tokens": len(gen), "max_len": cfg["max_len"], "d_model": cfg["d_model"],
            "layers": cfg["n_layers"], "heads": sum(layer["heads"] for layer in cfg["layers"]),
            "params": sum(p.numel() for p in model.parameters()), "proven_heads": len(rules),
            "unproven_heads": refused, "prove_s": round(t2 - t1, 3), "load_s": round(load_s, 3),
            "run_s": round(t3 - t_run, 3), "reference_s": round(ref_s, 3),
            "steps_per_s": round(got.steps / max(t3 - t_run, 1e-9), 1)}
