"""Loop-until-halt: run a looped program's body (the same layers) pass after pass, batched.

Each machine in the batch halts on its own pass: its halt flag (a register the body writes) says the
pass just run was a no-op, and from then on its residual stream is left as it is. The runtime reads
only the flag registers between passes; every change to the state is made by the transformer.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import torch
from hardwire.runtime.loop_state import LongRun, LoopResult, LoopState, decode_register, progress_bar
from hardwire.runtime.model import Transformer, decode_words


def flag(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """A 0/1 flag register (bit 0), read at the first input position of every row."""
    return x[:, 1, dims[0]] > 0.5


@contextlib.contextmanager
def trace_writer(path: str | None):
    """An on_step callback writing {"step": t, register: values, ...} lines to path (None: no trace)."""
    if path is None:
        yield None
        return
    with open(path, "w") as f:
        yield lambda t, regs: f.write(json.dumps({"step": t, **regs}) + "\n")


def use_fast(model: Transformer, fast: bool | None, batch: list[list]) -> bool:
    """fast=None: the fast paths where runtime.fast's cost model expects them to be quicker than the dense pass,
    unless the model was marked `force_dense` (the CLI's --dense)."""
    if fast is not None:
        return fast
    if getattr(model, "force_dense", False) or not batch:
        return False
    from hardwire.runtime.fast_cost import prefer_fast
    return prefer_fast(model, batch)


def check_long(batch: list[list], long: LongRun | None) -> None:
    """A checkpointed or resumed run holds one row (the CLI's machines); refuse a batch."""
    if long is not None and (long.save is not None or long.resume is not None) and len(batch) != 1:
        raise ValueError(f"a checkpointed or resumed loop runs one input, not {len(batch)}")


@torch.no_grad()
def run_loop(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool | str = False,
             on_step: Callable[[int, dict], None] | None = None, fast: bool | None = None,
             long: LongRun | None = None) -> list[LoopResult]:
    """Run every input of the batch until it halts or has taken `max_steps` steps.

    on_step(step, registers) gets, after every pass, each register's words for row 0 (for tests).
    fast=True runs on runtime.fast's compacted, shared-row and hard-attention paths, which give the same outputs,
    steps, emitted values and halting; fast=False runs the plain dense pass below, the reference; fast=None
    (the default) picks the one the cost model expects to be quicker (see use_fast).
    long (one row only): resume from long.resume, call long.save(LoopState) every long.every_s seconds and when
    the step limit stops the run, and measure the progress bar against long.total; either path, same results.
    """
    check_long(batch, long)
    if use_fast(model, fast, batch):
        from hardwire.runtime.fast_loop import run_loop_fast
        return run_loop_fast(model, batch, max_steps, progress, on_step, long=long)
    from hardwire.runtime.threads import SPLIT_POSITIONS, THREADS, intra_op_threads
    small = len(batch) * (max((len(x) for x in batch), default=0) + 1) <= SPLIT_POSITIONS
    with intra_op_threads(THREADS if small else None):   # small passes: see intra_op_threads
        return run_loop_dense(model, batch, max_steps, progress, on_step, long)


@torch.no_grad()
def run_loop_dense(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool | str = False,
                   on_step: Callable[[int, dict], None] | None = None,
                   long: LongRun | None = None) -> list[LoopResult]:
    """run_loop on the plain dense forward pass (model.layer): every position, every layer, every weight."""
    check_long(batch, long)
    loop = model.config["loop"]
    body, flags = loop["body_layers"], loop["flags"]
    ids, lengths = model.encode(batch)
    x, mask = model.embed(ids, lengths)
    b = x.shape[0]
    steps = torch.zeros(b, dtype=torch.long, device=x.device)
    halted = torch.zeros(b, dtype=torch.bool, device=x.device)
    emitted: list[list[int]] = [[] for _ in range(b)]
    first = 0
    if long is not None and long.resume is not None:
        x[0] = long.resume.residual.to(x.dtype).to(x.device)
        first = long.resume.steps
        steps[0] = first
        emitted[0] = list(long.resume.emitted)
    total = long.total if long is not None and long.total is not None else max_steps
    bar = progress_bar(total, progress, long.desc if long is not None else "looping", first)
    for t in range(first, max_steps + 1):
        y = x
        for i in range(body):
            y, _ = model.layer(y, mask, i, keep_attention=False)
        if "halted" in flags:
            now = flag(y, flags["halted"]) & ~halted
            halted |= now
        ran = ~halted
        if t == max_steps or not bool(ran.any()):
            break  # a pass beyond max_steps only tells whether the machine had halted
        steps += ran.long()
        if "emit_on" in flags:
            on = flag(y, flags["emit_on"]) & ran
            if bool(on.any()):
                vals = decode_words(y[:, 1, flags["emit_val"]])
                for r in torch.nonzero(on).flatten().tolist():
                    emitted[r].append(vals[r])
        x = torch.where(ran[:, None, None], y, x)
        bar.update(1)
        if long is not None and long.due():
            long.save(LoopState(int(steps[0]), x[0].clone(), list(emitted[0])))
        if on_step is not None:
            on_step(t + 1, {name: decode_register(x[0, 1:int(lengths[0])], reg)
                            for name, reg in loop["registers"].items() if not name.startswith("__")})
    bar.close()
    if long is not None and long.save is not None and not bool(halted[0]):   # stopped by the limit: resumable
        long.save(LoopState(int(steps[0]), x[0].clone(), list(emitted[0])))
    for i in range(body, model.config["n_layers"]):
        x, _ = model.layer(x, mask, i, keep_attention=False)
    outputs = model.decode(x, lengths)
    return [LoopResult(outputs[r], int(steps[r]), bool(halted[r]), emitted[r]) for r in range(b)]
