"""`hardwire subleq IMAGE`: run a SUBLEQ image on the compiled computer and compare with the emulator."""
from __future__ import annotations

import time

from hardwire.compiler.core.errors import HardwireError
from hardwire.machines.subleq import emulator as subleq_ref
from hardwire.machines.subleq.program import FLOAT32_MAX_BITS, program_path


def cmd_subleq(a) -> dict:
    if getattr(a, "mode", "loop") == "cot":
        from hardwire.cli.subleq_cot import cmd_subleq_cot
        return cmd_subleq_cot(a)
    from hardwire.cli import long_run
    from hardwire.cli.args import check_output
    from hardwire.runtime.loop import run_loop
    if a.trace is not None:
        check_output(a.trace, "--trace")
    long_run.check_paths(a)
    if not 2 <= a.bits <= 53:
        raise HardwireError(f"--bits {a.bits}: a word has 2 to 53 bits")
    if a.mem < 3 or a.mem > 2 ** (a.bits - 1):
        raise HardwireError(f"--mem {a.mem} needs addresses up to {a.mem - 1}, which {a.bits}-bit words cannot "
                            f"hold (at most {2 ** (a.bits - 1)} words); raise --bits or lower --mem")
    from hardwire.cli.subleq_cot import load_image
    image = load_image(a)
    image = image + [0] * (a.mem - len(image))
    t0 = time.perf_counter()
    model, dtype = computer(a.mem, a.bits, a.dtype, a.device)
    long_run.fits(model, "the SUBLEQ computer", "lower --mem")
    from hardwire import checkpoint
    from hardwire.cache import model_cache_path
    what = f"subleq {a.image} ({a.mem} words of {a.bits} bits, {dtype})"
    key = long_run.model_key(model_cache_path(program_path(), {"mem": a.mem, "bits": a.bits}))
    ident = checkpoint.identity(kind="subleq", model=key, image=image, dtype=dtype)
    long, saver = long_run.loop_long_run(a, what, ident, a.max_steps, "instructions")
    t1 = time.perf_counter()
    from hardwire.runtime.loop import trace_writer, use_fast
    run_path = "fast" if not a.dense and use_fast(model, None, [image]) else "dense"
    with trace_writer(a.trace) as on_step:
        got = run_loop(model, [image], max_steps=a.max_steps, progress=long_run.progress_mode(a), on_step=on_step,
                       fast=run_path == "fast", long=long)[0]
    t2 = time.perf_counter()
    want = subleq_ref.run(image, mem=a.mem, bits=a.bits, max_steps=a.max_steps)
    same = (got.steps, got.halted, got.emitted, got.outputs["memory"]) == (want.steps, want.halted, want.output,
                                                                            want.mem)
    return {"mode": "loop", "steps": got.steps, "halted": got.halted, "output": got.emitted,
            "text": subleq_ref.text(got.emitted),
            "memory": got.outputs["memory"], "matches_reference": same, "mem": a.mem, "bits": a.bits,
            "dtype": dtype, "device": str(next(model.parameters()).device), "path": run_path,
            "load_s": round(t1 - t0, 3),
            "run_s": round(t2 - t1, 3), "steps_per_s": round((got.steps - long.done) / max(t2 - t1, 1e-9), 1),
            **long_run.report(a, long.done, saver)}


def computer(mem: int, bits: int, dtype: str | None, device: str | None):
    """The compiled computer and the dtype it runs in: float32 when its weights and sums fit (compiler/precision.py,
    which gives FLOAT32_MAX_BITS), else float64 (the summary line names it); an asked dtype that cannot hold it
    is refused. A weight file stores float32, so float32 runs load the cached file and float64 runs use the
    compiled weights themselves: a float32 file rounds the MLP weights of words over 20 bits (2^25 + 6 at 23
    bits), which is why float64 runs from the cache never halted on `0 0 -1` from 23 bits on. A cached file exists
    only where float32 holds the model (CompiledModel.save refuses to round), so a cache hit needs no compile."""
    import torch

    from hardwire.cache import model_cache_path
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    from hardwire.compiler.precision import choose_dtype, fit
    from hardwire.runtime.model import from_compiled, load
    params = {"mem": mem, "bits": bits}
    path = model_cache_path(program_path(), params)
    if dtype != "float64" and path.exists():
        return load(str(path), device, torch.float32), "float32"
    compiled = compile_program(check_file(program_path(), params))
    dtype, _ = choose_dtype(f"subleq at {bits}-bit words", fit(compiled.tensors, compiled.config), dtype)
    if dtype == "float32":
        path.parent.mkdir(parents=True, exist_ok=True)
        compiled.save(str(path))
        return load(str(path), device, torch.float32), dtype
    return from_compiled(compiled, device, torch.float64), dtype


def render_subleq(info: dict) -> str:
    status = "halted" if info["halted"] else "did not halt (step limit)"
    printable = all(v in (9, 10, 13) or 32 <= v < 127 for v in info["output"])
    shown = info["text"] if printable else " ".join(map(str, info["output"])) + "\n"
    return (f"{shown}{'' if shown.endswith(chr(10)) or not shown else chr(10)}"
            f"-- {info['steps']} steps, {status}; matches the emulator: {info['matches_reference']} "
            f"({info['bits']}-bit words, {info['mem']} words of memory, {info['dtype']} on {info['device']}, "
            f"{info['steps_per_s']:.0f} steps/s, {info['path']} path)")


def add_parser(sub) -> None:
    from hardwire.cli.args import positive_int
    s = sub.add_parser("subleq", help="run a SUBLEQ image on the compiled looped transformer")
    s.add_argument("image", help="whitespace-separated integers (# comments), or assembly with --asm")
    s.add_argument("--mode", choices=["loop", "cot"], default="loop",
                   help="loop: the looped transformer, one pass per instruction (default); cot: the trace mode, "
                        "three generated tokens per instruction, sizes independent of --mem (docs/subleq.md)")
    s.add_argument("--mem", type=int, default=256, help="memory size in words (default 256; --mode cot: up to "
                   "2^(bits-1) and 1,048,575)")
    s.add_argument("--bits", type=int, default=16, help="word width (default 16)")
    s.add_argument("--max-steps", type=positive_int, default=1_000_000, help="stop after this many instructions")
    s.add_argument("--asm", action="store_true", help="IMAGE is assembly (see hardwire/machines/subleq/asm.py)")
    s.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help=f"default: float32 up to {FLOAT32_MAX_BITS}-bit words, else float64")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    s.add_argument("--trace", default=None, metavar="FILE.jsonl", help="write pc and memory after every step")
    s.add_argument("--dense", action="store_true",
                   help="run the plain dense forward pass (the reference); by default the fast paths of "
                        "runtime/fast.py run where they are expected to be quicker")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    from hardwire.cli.long_run import add_long_run_options
    add_long_run_options(s)
