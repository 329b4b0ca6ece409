"""`generate(..., attention="index")`: KV-cached decoding where every head proven by runtime/index_attention.py is
a table lookup, O(1) per token whatever the sequence length; the other heads run the softmax over their cache.

A `latest` (`earliest`) head keeps, per row of the batch, a table key code -> the value of the latest (first) key
with that code (and whether there is one): O(key codes) memory, no key cache. A `position` head keeps its values
by position and reads the one at its query's target. Everything else (projections, MLPs) is runtime/fast.py's
compacted plan.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from hardwire.runtime.decode_step import next_values, record, target
from hardwire.runtime.index_attention import Rule, derive
from hardwire.runtime.model import Transformer

PREFILL_CHUNK = 512


@dataclass
class HeadState:
    """One proven head's decoding state for a batch."""
    rule: Rule
    q_dims: torch.Tensor
    k_dims: torch.Tensor
    target: torch.Tensor       # per query code, the slot of values it reads
    values: torch.Tensor       # latest, earliest: [B, codes + 1, e] (the last: BOS); position: [B, max_len + 1, e]
    have: torch.Tensor | None  # latest, earliest: [B, codes + 1] bool
    bos: torch.Tensor          # [B, e] BOS's value


def generate_index(model: Transformer, prompts: list[list], max_len: int | None = None,
                   on_token: Callable[[], None] | None = None, kernel: str | None = None,
                   stamps: dict[int, float] | None = None, arrays: bool = False, long=None) -> list:
    """generate with proven heads as lookups (see the module docstring); the same tokens as the dense pass.

    kernel: "native" (runtime/index_native.py: the decoding loop as one numba kernel; needs numba and a model that
    qualifies), "torch" (tensor operations per step), or None: native where it can run (see `native_why_not`).
    stamps, when given, maps token indices of row 0 to time: each gets time.perf_counter() as that token is read
    (the benches; the native kernel returns to Python only there). long: a LongRun whose checkpoints (save) and
    resume are the native kernel's DecodeState (one prompt)."""
    from hardwire.runtime.threads import THREADS, intra_op_threads
    if kernel not in (None, "native", "torch"):
        raise ValueError("kernel is 'native', 'torch' or None (native where it can run)")
    if kernel == "native":
        from hardwire.runtime.index_native import require
        require()
        why = native_why_not(model)
        if why is not None:
            from hardwire.compiler.core.errors import HardwireError
            raise HardwireError(f"the native index kernel cannot decode this model: {why}")
    native = kernel == "native" or (kernel is None and native_why_not(model) is None)
    if long is not None and (long.save is not None or long.resume is not None) and not native:
        from hardwire.compiler.core.errors import HardwireError
        raise HardwireError(f"an index decoding is checkpointed by the native kernel, which cannot decode this model: "
                            f"{native_why_not(model)}")
    with intra_op_threads(THREADS):
        if native:
            from hardwire.runtime.index_native import generate_native
            return generate_native(model, prefill(model, prompts, max_len), proven(model), on_token, stamps, arrays,
                                   long)
        return _generate_index(model, prompts, max_len, on_token, stamps)


def native_why_not(model: Transformer) -> str | None:
    """Why `generate_index` would not take the native kernel for this model (None: it would)."""
    from hardwire.runtime.index_native import available
    if not available():
        return "numba is not installed (the `native` extra)"
    from hardwire.runtime.index_plan import why_not
    return why_not(model, proven(model))


def proven(model: Transformer) -> dict[tuple[int, int], Rule]:
    """(layer, head) -> its proven rule."""
    return {(r.layer, r.head): r for r in derive(model) if isinstance(r, Rule)}


@dataclass
class Prefilled:
    """The state after the prompts, shared by both index decoders: per layer its soft heads' K/V caches and its
    proven heads' tables, and each row's residual at its last position."""
    fm: object                 # runtime.fast.FastModel
    plan: object               # its Plan for the causal pass
    layers: list               # per layer: [(soft head indices, K cache, V cache, {head: HeadState})] per group
    last: torch.Tensor         # [B, D]
    lengths: torch.Tensor      # [B]
    name: str                  # the generated output
    stop: set
    limit: int                 # the position limit, BOS included


def prefill(model: Transformer, prompts: list[list], max_len: int | None) -> Prefilled:
    """Every prompt position on the fast path; then the soft heads' caches and the proven heads' tables."""
    from hardwire.runtime.fast import FastModel
    cfg = model.config
    fm = FastModel.of(model, "soft")
    rules = proven(model)
    name, stop, limit = target(model, max_len)
    ids, lengths = model.encode(prompts)
    b, t = ids.shape
    x = fm.to_fm(model.embed_tokens(ids))                                      # [D, B, T]
    dev = x.device
    plan = fm.plan(torch.zeros(fm.d, dtype=torch.bool), 0, cfg["n_layers"], b, t)
    keys = torch.arange(limit, device=dev)
    ctx = fm.context(lengths, t)
    rows = torch.arange(b, device=dev)
    layers = []   # per layer: (soft head indices, their K/V caches, {head: HeadState})
    for i, ex in enumerate(plan.layers):
        flat = x.view(fm.d, -1)
        outs, per_layer = [], []
        assert len(ex.heads) <= 1 and not any(g.shared for g in ex.heads), "a causal layer's heads are one group"
        for g in ex.heads:
            h, e = g.heads, g.e
            q, k, v = (p(flat, x, ctx).view(h, e, b, t).permute(2, 0, 3, 1) for p in (g.pq, g.pk, g.pv))
            out = torch.empty_like(q)
            for s in range(0, t, PREFILL_CHUNK):
                qs = torch.arange(s, min(s + PREFILL_CHUNK, t), device=dev)
                ok = (keys[None, None, :t] < lengths[:, None, None]) & (keys[None, None, :t] <= qs[None, :, None])
                sc = (q[:, :, s:s + len(qs)] @ k.transpose(-1, -2)).masked_fill(~ok[:, None], float("-inf"))
                out[:, :, s:s + len(qs)] = torch.softmax(sc, -1) @ v
            outs.append(out.permute(1, 3, 0, 2).reshape(h * e, b * t))
            soft = torch.tensor([j for j in range(h) if (i, j) not in rules], dtype=torch.long, device=dev)
            kc, vc = k.new_zeros(b, len(soft), limit, e), v.new_zeros(b, len(soft), limit, e)
            kc[:, :, :t], vc[:, :, :t] = k[:, soft], v[:, soft]
            states = {j: head_state(rules[(i, j)], x, v[:, j], lengths, cfg["max_len"] + 1)
                      for j in range(h) if (i, j) in rules}
            per_layer.append((soft, kc, vc, states))
        for g, o in zip(ex.heads, outs):
            flat.index_add_(0, g.o_rows, g.wo @ o)
        fm.mlp(x, ctx, ex)
        layers.append(per_layer)
    return Prefilled(fm, plan, layers, x[:, rows, lengths - 1].t(), lengths, name, stop, limit)


def _generate_index(model: Transformer, prompts: list[list], max_len: int | None,
                    on_token: Callable[[], None] | None, stamps: dict[int, float] | None = None) -> list[list]:
    """The torch index decoder: each step a few dozen compacted tensor operations."""
    from hardwire.runtime.context import Context
    pre = prefill(model, prompts, max_len)
    fm, plan, layers, stop, limit = pre.fm, pre.plan, pre.layers, pre.stop, pre.limit
    b = len(prompts)
    dev = pre.last.device
    keys = torch.arange(limit, device=dev)
    rows = torch.arange(b, device=dev)
    last, pos = pre.last, pre.lengths.clone()
    out_tokens: list[list] = [[] for _ in range(b)]
    active = [True] * b
    step_ctx = Context(b, 1, None, torch.zeros(b, 1, dtype=torch.bool, device=dev),
                       torch.zeros(1, dtype=torch.long, device=dev), hard=False)
    any_soft = any(len(soft) for per_layer in layers for soft, *_ in per_layer)
    while True:
        vals = next_values(model, last, pre.name)
        new_ids = record(model, vals, out_tokens, active, pos, stop, limit)
        if stamps is not None and len(out_tokens[0]) - 1 in stamps and stamps[len(out_tokens[0]) - 1] is None:
            stamps[len(out_tokens[0]) - 1] = time.perf_counter()
        if on_token is not None:
            on_token()
        if not any(active):
            return out_tokens
        p = torch.clamp(pos, max=limit - 1)
        y = model.embed_step(torch.tensor(new_ids, device=dev)) + model.position_rows(p)
        y = y.t().contiguous()[:, :, None]                                                              # [D,B,1]
        valid = (keys[None, :] <= p[:, None])[:, None, None, :] if any_soft else None                  # [B,1,1,L]
        for ex, per_layer in zip(plan.layers, layers):
            flat = y.view(fm.d, -1)
            outs = []
            for g, (soft, kc, vc, states) in zip(ex.heads, per_layer):
                h, e = g.heads, g.e
                v = g.pv(flat, y, step_ctx).view(h, e, b).permute(2, 0, 1)                         # [B, H, e]
                o = torch.empty_like(v)
                if len(soft):   # the unproven heads: the softmax over their cache
                    q, k = (pr(flat, y, step_ctx).view(h, e, b).permute(2, 0, 1) for pr in (g.pq, g.pk))
                    kc[rows, :, p] = k[:, soft]
                    vc[rows, :, p] = v[:, soft]
                    sc = (q[:, soft, None] @ kc.transpose(-1, -2)).masked_fill(~valid, float("-inf"))
                    o[:, soft] = (torch.softmax(sc, -1) @ vc)[:, :, 0]
                for j, st in states.items():
                    o[:, j] = lookup(st, flat, v[:, j], rows, p)
                outs.append(o.permute(1, 2, 0).reshape(h * e, b))
            for g, o in zip(ex.heads, outs):
                flat.index_add_(0, g.o_rows, g.wo @ o)
            fm.mlp(y, step_ctx, ex)
        last = y[:, :, 0].t()
        pos = pos + 1


def head_state(rule: Rule, x: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor, n_pos: int) -> HeadState:
    """A proven head's state after the prompt: x the residual [D, B, T] before its layer, v its values [B, T, e].

    Every slot a query can read holds its answer already: a code with no key yet (and the extra slot that BOS's
    targets point to), and a position not reached yet, hold BOS's value. So a lookup is one gather."""
    b, t, e = v.shape
    dev = x.device
    q_dims = torch.tensor(rule.query.dims(), dtype=torch.long, device=dev)
    k_dims = torch.tensor(rule.key.dims(), dtype=torch.long, device=dev)
    bos = v[:, 0].clone()
    posn = torch.arange(t, device=dev)[None].expand(b, t)
    if rule.kind == "position":   # slot j: the key at position j (0: BOS); n_pos = max_len + 1 slots
        values = bos[:, None].expand(b, n_pos, e).clone()
        values[:, :t] = torch.where((posn < lengths[:, None])[..., None], v, bos[:, None])
        target = torch.where(rule.target >= 1, rule.target, 0).to(dev)
        return HeadState(rule, q_dims, k_dims, target, values, None, bos)
    n = rule.key.size
    codes = rule.key.index(x[k_dims].reshape(len(k_dims), -1)).view(b, t)            # [B, T]
    real = (posn >= 1) & (posn < lengths[:, None])
    if rule.kind == "latest":
        pick = torch.full((b, n + 1), -1, dtype=torch.long, device=dev)
        pick.scatter_reduce_(1, torch.where(real, codes, n), torch.where(real, posn, -1), "amax")
    else:   # earliest: the least real position per code (t: none)
        pick = torch.full((b, n + 1), t, dtype=torch.long, device=dev)
        pick.scatter_reduce_(1, torch.where(real, codes, n), torch.where(real, posn, t), "amin")
        pick = torch.where(pick < t, pick, -1)
    have = pick >= 0
    values = torch.gather(v, 1, pick.clamp_min(0)[:, :, None].expand(b, n + 1, e))
    values = torch.where(have[..., None], values, bos[:, None])                      # slot n: BOS
    target = torch.where(rule.target >= 0, rule.target, n).to(dev)
    return HeadState(rule, q_dims, k_dims, target, values, have, bos)


def lookup(st: HeadState, flat: torch.Tensor, v: torch.Tensor, rows: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """One decoding step of a proven head: record the new key, then read the query's winner ([B, e])."""
    tgt = st.target[st.rule.query.index(flat.index_select(0, st.q_dims))]             # [B]
    if st.rule.kind == "position":
        st.values[rows, p] = v
    else:
        code = st.rule.key.index(flat.index_select(0, st.k_dims))
        if st.rule.kind == "earliest":   # only a code's first key is kept
            v = torch.where(st.have[rows, code][:, None], st.values[rows, code], v)
            st.have[rows, code] = True
        st.values[rows, code] = v
    return st.values[rows, tgt]
