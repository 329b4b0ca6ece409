"""Autoregressive decoding with a KV cache, batched: each row appends its own next token at its own position.

The model is causal and every norm is position-wise, so a position's residual never changes once computed:
caching each layer's keys and values is exact, and one step costs one position per row.

`generate` runs on runtime/fast.py's compacted layers and per-query hard attention (fast=True), or on the
plain dense layers below (fast=False, or a model marked `force_dense`): the same tokens either way. By default
it takes the one runtime.fast's cost model expects to be quicker. attention="index" takes runtime/index_decode.py
whatever `fast` says: the compacted layers, with every head that runtime/index_attention.py proves from the weights
a table lookup (O(1) per token), and the softmax for the others.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from hardwire.runtime.decode_step import next_values, record, target
from hardwire.runtime.loop_state import LongRun, progress_bar
from hardwire.runtime.model import Transformer

PREFILL_CHUNK = 512


class Ticker:
    """A decoder's progress bar and checkpoints: after each token, the bar moves and, when one is due,
    long.save gets row 0's tokens generated so far (a resumed run passes the earlier ones in its prompt)."""

    def __init__(self, long: LongRun | None, progress: bool | str, rows: int):
        if long is not None and long.save is not None and rows != 1:
            raise ValueError(f"a checkpointed decoding runs one prompt, not {rows}")
        self.long = long
        total = long.total if long is not None else None
        self.bar = progress_bar(total, progress, long.desc if long is not None else "tokens",
                                long.done if long is not None else 0)

    def tick(self, out: list[list]) -> None:
        self.bar.update(1)
        if self.long is not None and self.long.due():
            self.long.save(list(out[0]))

    def close(self) -> None:
        self.bar.close()


@torch.no_grad()
def generate(model: Transformer, prompts: list[list], max_len: int | None = None, fast: bool | None = None,
             attention: str = "soft", progress: bool | str = False, long: LongRun | None = None,
             on_token: Callable[[], None] | None = None, kernel: str | None = None,
             stamps: dict[int, float] | None = None, arrays: bool = False) -> list:
    """Tokens generated after each prompt, until a stop token (included) or max_len tokens in all.

    attention: "soft" (the softmax), "hard" (per query where its margin holds), or "index" (proven heads as
    lookups: runtime/index_decode.py). progress: a bar on stderr (see loop_state.progress_bar); long (one
    prompt, not with "index"): checkpoints of the tokens so far every long.every_s seconds, the bar measured
    against long.total from long.done. on_token() is called once per decoding step (benches time it). With
    "index", kernel picks the decoder: "native" (one numba kernel, runtime/index_native.py), "torch", or None
    (native where numba is installed and the model qualifies); stamps: {token index of row 0: None} to time, each
    filled with time.perf_counter() as that token is read. arrays: the native kernel's word tokens as int64 numpy
    arrays, not lists (a chain of 47 million tokens is 377 MB so, 1.7 GB as Python ints); other paths give lists."""
    from hardwire.runtime.loop import use_fast
    from hardwire.runtime.threads import SPLIT_POSITIONS, THREADS, intra_op_threads
    if attention not in ("soft", "hard", "index"):
        raise ValueError("attention is 'soft', 'hard' or 'index'")
    if kernel is not None and attention != "index":
        raise ValueError("kernel chooses the index decoder; it needs attention='index'")
    if attention == "index" and long is not None and (long.save is not None or long.resume is not None) \
            and (kernel == "torch" or len(prompts) != 1):
        raise ValueError("an index decoding's checkpoints are the native kernel's, of one prompt")
    if max_len is not None and any(len(p) >= max_len for p in prompts):
        # a prompt already max_len long generates nothing (decode_step.record's rule); the others decode as a batch,
        # whose caches are sized by max_len
        rest = [i for i, p in enumerate(prompts) if len(p) < max_len]
        got = generate(model, [prompts[i] for i in rest], max_len, fast, attention, progress, long, on_token, kernel,
                       stamps, arrays) if rest else []
        out: list[list] = [[] for _ in prompts]
        for i, g in zip(rest, got):
            out[i] = g
        return out
    ticker = Ticker(long, progress, len(prompts))
    try:
        if attention == "index":
            from hardwire.runtime.index_decode import generate_index

            def step(n: int = 1) -> None:
                ticker.bar.update(n)
                for _ in range(n if on_token is not None else 0):
                    on_token()
            step.counts = True   # the native kernel reports a chunk's tokens in one call
            return generate_index(model, prompts, max_len, step if progress or on_token else None, kernel, stamps,
                                  arrays, long)
        if use_fast(model, fast, prompts):
            return generate_fast(model, prompts, max_len, attention, ticker, on_token)
        small = len(prompts) * (max((len(p) for p in prompts), default=0) + 1) <= SPLIT_POSITIONS
        with intra_op_threads(THREADS if small else None):   # small steps: see runtime.threads.intra_op_threads
            return generate_dense(model, prompts, max_len, ticker, on_token)
    finally:
        ticker.close()


def generate_dense(model: Transformer, prompts: list[list], max_len: int | None = None,
                   ticker: Ticker | None = None, on_token: Callable[[], None] | None = None) -> list[list]:
    """generate on the plain dense layers."""
    cfg = model.config
    name, stop, limit = target(model, max_len)
    ids, lengths = model.encode(prompts)
    x = model.embed_tokens(ids)
    b, t = ids.shape
    keys = torch.arange(limit, device=x.device)
    caches = []
    for i in range(cfg["n_layers"]):  # prefill: the prompts, keeping every layer's keys and values
        qkv, wo, _, _ = model.packed(i)
        kv = None
        if qkv is not None:
            h = cfg["layers"][i]["heads"]
            q, k, v = (x @ qkv).view(b, t, 3, h, -1).permute(2, 0, 3, 1, 4)
            kc = k.new_zeros(b, h, limit, k.shape[-1])
            vc = v.new_zeros(b, h, limit, v.shape[-1])
            kc[:, :, :t], vc[:, :, :t] = k, v
            kv = (kc, vc)
            out = torch.empty_like(q)
            for s in range(0, t, PREFILL_CHUNK):  # queries in chunks: long prompts never need a [T, T] matrix
                qs = torch.arange(s, min(s + PREFILL_CHUNK, t), device=x.device)
                ok = (keys[None, None, :t] < lengths[:, None, None]) & (keys[None, None, :t] <= qs[None, :, None])
                sc = (q[:, :, s:s + len(qs)] @ k.transpose(-1, -2)).masked_fill(~ok[:, None], float("-inf"))
                out[:, :, s:s + len(qs)] = torch.softmax(sc, -1) @ v
            x = x + out.transpose(1, 2).reshape(b, t, -1) @ wo
        x = model.mlp(x, i)
        caches.append(kv)
    rows = torch.arange(b, device=x.device)
    last = x[rows, lengths - 1]                     # [B, D]: the residual at each row's last position
    pos = lengths.clone()                           # where each row's next token goes
    out: list[list] = [[] for _ in range(b)]
    active = [True] * b
    while True:
        vals = next_values(model, last, name)
        new_ids = record(model, vals, out, active, pos, stop, limit)
        if on_token is not None:
            on_token()
        if not any(active):
            if ticker is not None:
                ticker.bar.update(1)   # the last token: counted, not checkpointed (the run is complete)
            return out
        if ticker is not None:
            ticker.tick(out)
        step_ids = torch.tensor(new_ids, device=x.device)
        p = torch.clamp(pos, max=limit - 1)
        y = (model.embed_step(step_ids) + model.position_rows(p))[:, None, :]           # [B, 1, D]
        valid = (keys[None, :] <= p[:, None])[:, None, None, :]                              # [B, 1, 1, L]
        for i in range(cfg["n_layers"]):
            qkv, wo, _, _ = model.packed(i)
            if qkv is not None:
                h = cfg["layers"][i]["heads"]
                q, k, v = (y @ qkv).view(b, 1, 3, h, -1).permute(2, 0, 3, 1, 4)  # [B, H, 1, dh]
                kc, vc = caches[i]
                kc[rows, :, p] = k[:, :, 0]
                vc[rows, :, p] = v[:, :, 0]
                att = torch.softmax((q @ kc.transpose(-1, -2)).masked_fill(~valid, float("-inf")), -1)
                y = y + (att @ vc).transpose(1, 2).reshape(b, 1, -1) @ wo
            y = model.mlp(y, i)
        last = y[:, 0]
        pos = pos + 1


def generate_fast(model: Transformer, prompts: list[list], max_len: int | None = None,
                  attention: str = "soft", ticker: Ticker | None = None,
                  on_token: Callable[[], None] | None = None) -> list[list]:
    """generate on runtime/fast.py's plans: compacted projections and MLPs, and per query either the hard head
    (where the margin holds) or the softmax. Nothing is shared between positions of a causal model, so every
    group runs at every position; the cache holds each head group's keys and values."""
    from hardwire.runtime.threads import THREADS, intra_op_threads
    with intra_op_threads(THREADS):
        return _generate_fast(model, prompts, max_len, attention, ticker, on_token)


def _generate_fast(model: Transformer, prompts: list[list], max_len: int | None, attention: str,
                   ticker: Ticker | None, on_token: Callable[[], None] | None = None) -> list[list]:
    from hardwire.runtime.context import Context
    from hardwire.runtime.fast import FastModel
    from hardwire.runtime.hard_attention import attention_weights
    cfg = model.config
    fm = FastModel.of(model, attention)
    name, stop, limit = target(model, max_len)
    ids, lengths = model.encode(prompts)
    b, t = ids.shape
    x = fm.to_fm(model.embed_tokens(ids))                                      # [D, B, T]
    dev = x.device
    plan = fm.plan(torch.zeros(fm.d, dtype=torch.bool), 0, cfg["n_layers"], b, t)
    keys = torch.arange(limit, device=dev)
    ctx = fm.context(lengths, t)
    hard = attention == "hard"
    caches, xmax = [], []
    for ex in plan.layers:  # prefill, keeping every head group's keys and values
        flat = x.view(fm.d, -1)
        xmax.append(flat.abs().amax() if hard else None)
        outs, kv = [], []
        for g in ex.heads:
            h, e = g.heads, g.e
            q, k, v = (p(flat, x, ctx).view(h, e, b, t).permute(2, 0, 3, 1) for p in (g.pq, g.pk, g.pv))
            kc, vc = k.new_zeros(b, h, limit, e), v.new_zeros(b, h, limit, e)
            kc[:, :, :t], vc[:, :, :t] = k, v
            kv.append((kc, vc))
            out = torch.empty_like(q)
            for s in range(0, t, PREFILL_CHUNK):
                qs = torch.arange(s, min(s + PREFILL_CHUNK, t), device=dev)
                ok = (keys[None, None, :t] < lengths[:, None, None]) & (keys[None, None, :t] <= qs[None, :, None])
                sc = (q[:, :, s:s + len(qs)] @ k.transpose(-1, -2)).masked_fill(~ok[:, None], float("-inf"))
                att = attention_weights(sc, g.tau * xmax[-1] ** 2 if hard else None, ctx, None, fm.u)
                out[:, :, s:s + len(qs)] = att @ v
            outs.append(out.permute(1, 3, 0, 2).reshape(h * e, b * t))
        for g, o in zip(ex.heads, outs):
            flat.index_add_(0, g.o_rows, g.wo @ o)
        fm.mlp(x, ctx, ex)
        caches.append(kv)
    rows = torch.arange(b, device=dev)
    last = x[:, rows, lengths - 1].t()                                        # [B, D]
    pos = lengths.clone()
    out: list[list] = [[] for _ in range(b)]
    active = [True] * b
    step_ctx = Context(b, 1, None, torch.zeros(b, 1, dtype=torch.bool, device=dev),
                       torch.zeros(1, dtype=torch.long, device=dev), hard=hard)
    while True:
        vals = next_values(model, last, name)
        new_ids = record(model, vals, out, active, pos, stop, limit)
        if on_token is not None:
            on_token()
        if not any(active):
            if ticker is not None:
                ticker.bar.update(1)   # the last token: counted, not checkpointed (the run is complete)
            return out
        if ticker is not None:
            ticker.tick(out)
        step_ids = torch.tensor(new_ids, device=dev)
        p = torch.clamp(pos, max=limit - 1)
        y = (model.embed_step(step_ids) + model.position_rows(p)).t().contiguous()[:, :, None]  # [D,B,1]
        valid = (keys[None, :] <= p[:, None])[:, None, None, :]                                          # [B,1,1,L]
        for i, ex in enumerate(plan.layers):
            flat = y.view(fm.d, -1)
            if hard:
                xmax[i] = torch.maximum(xmax[i], flat.abs().amax())
            outs = []
            for g, (kc, vc) in zip(ex.heads, caches[i]):
                h, e = g.heads, g.e
                q, k, v = (pr(flat, y, step_ctx).view(h, e, b).permute(2, 0, 1) for pr in (g.pq, g.pk, g.pv))
                kc[rows, :, p] = k
                vc[rows, :, p] = v
                sc = (q[:, :, None] @ kc.transpose(-1, -2)).masked_fill(~valid, float("-inf"))   # [B, G, 1, L]
                att = attention_weights(sc, g.tau * xmax[i] ** 2 if hard else None, step_ctx, None, fm.u)
                outs.append((att @ vc)[:, :, 0].permute(1, 2, 0).reshape(h * e, b))
            for g, o in zip(ex.heads, outs):
                flat.index_add_(0, g.o_rows, g.wo @ o)
            fm.mlp(y, step_ctx, ex)
        last = y[:, :, 0].t()
        pos = pos + 1
