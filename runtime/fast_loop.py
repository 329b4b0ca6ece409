"""runtime.loop.run_loop on the fast paths: passes in place, in chunks with no host sync, batches in slices.

A chunk keeps its starting residual, so that it can run again when an assumed hard-attention margin failed, and
so that a row that halted inside it can be brought back to the state before its halting pass.
"""
from __future__ import annotations

import concurrent.futures

import torch
from hardwire.runtime.context import Context
from hardwire.runtime.fast import FastModel, Plan
from hardwire.runtime.loop_state import LongRun, LoopResult, LoopState, decode_register, progress_bar
from hardwire.runtime.model import Transformer, decode_words
from hardwire.runtime.threads import MIN_SLICE_POSITIONS, SPLIT_POSITIONS, THREADS, WORKERS, intra_op_threads

MAX_CHUNK = 64         # passes run between two looks at the halting flags


def flag_fm(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """A 0/1 flag register (bit 0) at the first input position of every row of a feature-major residual."""
    return x[dims[0], :, 1] > 0.5


@torch.no_grad()
def run_loop_fast(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool | str = False,
                  on_step=None, attention: str = "soft", stats: dict | None = None, long: LongRun | None = None):
    """runtime.loop.run_loop on the fast paths, with the same results (see the module docstring).

    A batch of more than SPLIT_POSITIONS positions runs as independent slices (machines never interact), and so
    does one large enough to keep WORKERS threads busy with MIN_SLICE_POSITIONS each; slices run on WORKERS
    Python threads at once (torch releases the interpreter lock inside its operations). long: see run_loop
    (one row, so one slice)."""
    t = max(len(x) for x in batch) + 1 if batch else 1
    slices = max(-(-len(batch) * t // SPLIT_POSITIONS), min(WORKERS, len(batch) * t // MIN_SLICE_POSITIONS), 1)
    if slices > 1:   # a multiple of WORKERS, so that the threads finish together
        slices = -(-slices // WORKERS) * WORKERS
    per = max(1, -(-len(batch) // slices))
    starts = range(0, len(batch), per)

    def one(i: int) -> list:
        return _run_loop_fast(model, batch[i:i + per], max_steps, progress if i == 0 else False,
                              on_step if i == 0 else None, attention, stats if i == 0 else None,
                              long if i == 0 else None)
    with intra_op_threads(THREADS):
        if len(starts) == 1 or WORKERS == 1:
            return [r for i in starts for r in one(i)]
        with concurrent.futures.ThreadPoolExecutor(min(WORKERS, len(starts))) as pool:
            return [r for part in pool.map(one, starts) for r in part]


def _run_loop_fast(model: Transformer, batch: list[list], max_steps: int, progress: bool | str, on_step,
                   attention: str, stats: dict | None, long: LongRun | None = None):
    """Passes update the residual in place. A chunk keeps its starting residual, so that it can run again when
    an assumed margin failed, and so that a row that halted inside the chunk can be brought back to the state
    before its halting pass (by running it again from the start for the passes before it)."""
    fm = FastModel.of(model, attention)
    loop = model.config["loop"]
    body, n_layers, flags = loop["body_layers"], model.config["n_layers"], loop["flags"]
    ids, lengths = model.encode(batch)
    all_lengths = lengths
    x0 = model.embed(ids, lengths)[0]
    resume = long.resume if long is not None else None
    if resume is not None:
        x0[0] = resume.residual.to(x0.dtype).to(x0.device)
    x = fm.to_fm(x0)
    b, t = ids.shape
    dev = x.device
    ctx = fm.context(lengths, t)
    run_stats = ctx.stats                  # shared by the contexts that follow as rows leave the batch
    shared = fm.loop_shared(fm.shared_rows(x, ctx), body)
    plan = fm.plan(shared, 0, body, b, t, loop=True)
    final = x.clone()                      # each row's residual once it has halted (or the run has stopped)
    active = torch.arange(b, device=dev)   # the rows still running, in batch order
    halted_all = torch.zeros(b, dtype=torch.bool, device=dev)
    steps_all = torch.zeros(b, dtype=torch.long, device=dev)
    halted = torch.zeros(b, dtype=torch.bool, device=dev)
    steps = torch.zeros(b, dtype=torch.long, device=dev)
    emitted: list[list[int]] = [[] for _ in range(b)]
    if resume is not None:
        steps[0] = resume.steps
        emitted[0] = list(resume.emitted)
    total = long.total if long is not None and long.total is not None else max_steps
    bar = progress_bar(total, progress, long.desc if long is not None else "looping", int(steps[0]) if b else 0)
    emit_rows = torch.tensor(flags.get("emit_val", []), dtype=torch.long, device=dev)
    assume_hard = ctx.hard
    done, chunk, redone = (resume.steps if resume is not None else 0), 1, 0
    while True:
        if done == max_steps:              # one more pass only tells whether each machine had halted
            ctx.spec = False
            y = fm.run_plan(x, ctx, plan)
            if "halted" in flags:
                halted |= flag_fm(y, flags["halted"])
            break
        k = 1 if on_step is not None else min(chunk, max_steps - done)
        start = x.clone()
        for attempt in (0, 1):
            ctx.spec = attempt == 0 and assume_hard
            ctx.ok = []
            if attempt:
                x.copy_(start)
            halt_at = torch.zeros_like(steps)  # the pass of this chunk in which each row halted (0: none)
            emits = []
            for p in range(1, k + 1):
                fm.run_plan(x, ctx, plan, inplace=True)
                if "halted" in flags:
                    halt_at = torch.where((halt_at == 0) & flag_fm(x, flags["halted"]), p, halt_at)
                if "emit_on" in flags:
                    emits.append((flag_fm(x, flags["emit_on"]) & (halt_at == 0), x.index_select(0, emit_rows)[:, :, 1]))
            if not ctx.spec or not ctx.ok or bool(torch.stack(ctx.ok).all()):
                break
            assume_hard = False            # a margin failed: this chunk again, deciding every query
            redone += 1
        steps = steps + torch.where(halt_at == 0, k, halt_at - 1)
        stopped = torch.nonzero(halt_at).flatten()
        if len(stopped):                   # back to the state before the halting pass
            x[:, stopped] = replay(fm, start[:, stopped], halt_at[stopped] - 1, fm.context(lengths[stopped], t),
                                   plan)
        rows = active.tolist()
        for on, vals in emits:
            if bool(on.any()):
                words = decode_words(vals.t())
                for r in torch.nonzero(on).flatten().tolist():
                    emitted[rows[r]].append(words[r])
        done += k
        bar.update(k)
        if len(stopped):                   # halted rows leave the batch
            keep = torch.nonzero(halt_at == 0).flatten()
            final[:, active[stopped]] = x[:, stopped]
            halted_all[active[stopped]] = True
            steps_all[active[stopped]] = steps[stopped]
            x, active, lengths, steps = x[:, keep].contiguous(), active[keep], lengths[keep], steps[keep]
            halted = halted[keep]
            ctx = fm.context(lengths, t)
            ctx.stats = run_stats
            if len(active):
                plan = fm.plan(shared, 0, body, len(active), t, loop=True)
        if on_step is not None and len(active):   # the dense loop reports a pass only while a machine runs
            row0 = x[:, :1] if len(active) and int(active[0]) == 0 else final[:, :1]
            row0 = fm.materialize(row0.clone(), plan)[:, 0].t()
            on_step(done, {name: decode_register(row0[1:int(all_lengths[0])], reg)
                           for name, reg in loop["registers"].items() if not name.startswith("__")})
        if not len(active):
            break
        if long is not None and long.due():
            long.save(snapshot(fm, x, plan, int(steps[0]), emitted[0]))
        chunk = min(2 * chunk, MAX_CHUNK)
    bar.close()
    final[:, active] = x
    halted_all[active] = halted
    steps_all[active] = steps
    if stats is not None:
        stats.update(assume_hard=assume_hard, redone_chunks=redone, shared_rows=int(shared.sum()),
                     **run_stats)
    fm.materialize(final, plan)
    if long is not None and long.save is not None and not bool(halted_all[0]):   # stopped by the limit
        long.save(LoopState(int(steps_all[0]), fm.from_fm(final)[0].clone(), list(emitted[0])))
    if body < n_layers:
        ctx = fm.context(all_lengths, t)
        final = fm.run_plan(final, ctx, fm.plan(fm.shared_rows(final, ctx), body, n_layers, b, t))
    outputs = model.decode(fm.from_fm(final), all_lengths)
    return [LoopResult(outputs[r], int(steps_all[r]), bool(halted_all[r]), emitted[r]) for r in range(b)]


def snapshot(fm: FastModel, x: torch.Tensor, plan: Plan, steps: int, emitted: list[int]) -> LoopState:
    """Row 0 of a feature-major residual between passes, its lazy rows written out, as a LoopState."""
    row = fm.materialize(x[:, :1].clone(), plan)
    return LoopState(steps, fm.from_fm(row)[0].clone(), list(emitted))


def replay(fm: FastModel, x: torch.Tensor, passes: torch.Tensor, ctx: Context, plan: Plan):
    """Each row of x after its own number of passes (every margin decided per query)."""
    x = x.contiguous()
    for p in range(1, int(passes.max()) + 1 if len(passes) else 1):
        y = fm.run_plan(x, ctx, plan)
        x = torch.where((p <= passes)[None, :, None], y, x)
    return x
