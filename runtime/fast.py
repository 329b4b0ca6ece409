"""Fast execution paths for compiled weights: the same decoded results as the plain dense pass, far fewer FLOPs.

The dense pass (runtime/model.py) multiplies every residual dimension by every weight at every position.
Compiled weights are nearly all zeros (SUBLEQ with 256 words of 16 bits: 9,073 of 526,032 parameters are
non-zero), and a looped program's registers hold the same value at every position. This module runs the
same layers with only what they touch. docs/performance.md gives the argument for each path and the
measurements.

- **Compacted layers** (`SparseMap`, `Proj`). The residual is kept feature-major, `X[D, B, T]`, so reading
  rows is a contiguous gather and writing them is one `index_add_`. Each weight block keeps its non-zero
  rows, units and columns: dense where the cost model says so, the rest as COO entries.
- **Shared rows** (`FastModel.propagate`, `loop_shared`, `Plan.lazy`). Rows that hold one value at every
  position after BOS, and the MLP units and non-causal heads that read only such rows, are evaluated at BOS
  and position 1 only. In a loop, the rows are a fixed point of that propagation and are kept lazily (at
  positions 0 and 1).
- **Loop-invariant code** (`Proj.const`, `HeadGroup.k_const`). What reads only rows that no layer of the
  body writes is computed once per batch.
- **Hard attention** (`attention="hard"`; `margins`). Per query, from the scores: where every other key is
  at least M = ln T + ln(1/u) + 1 below the top (up to ties within the rounding bound tau), the head's
  output is the exact mean of the tied keys' values; elsewhere the softmax.
- **The loop** (`run_loop_fast`). Passes run in place, in chunks with no host sync. An assumed margin that
  fails re-runs the chunk, deciding every query. A row that halts inside a chunk is replayed to the pass
  before its halting pass. Large batches run as slices on threads, each on one intra-op thread.

Residuals are not bit-identical to the dense pass's: sums run over fewer terms, in another order, and a
shared value is computed once. Decoded outputs, step counts, emitted values and halting are equal, and
tests/test_fast.py checks that on every program, on random programs, and on the SUBLEQ and Turing machine
corpora.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import math
import os
from dataclasses import dataclass, field

import torch

from .model import Transformer, decode_words, layer_norm_pairs

# Cost model for choosing dense blocks or COO entries (measured on this project's 2-thread CPU, torch 2.13):
MAC_NS = 0.07          # one multiply-add of a dense block, per position
COO_NS = 0.7           # one gathered, scaled and index-added non-zero, per position
OP_NS = 6000.0         # one tensor operation's fixed cost
DENSE_OPS_PER_LAYER = 16    # tensor operations of one dense layer (runtime/model.py), for the same model
LOOP_OPS = 8           # the loop's own operations per pass (flags, halting, emitted values)
MAX_CHUNK = 64         # passes run between two looks at the halting flags
SPLIT_POSITIONS = 1 << 15   # a larger batch (rows x positions) runs as independent slices of about this size
THREADS = 1            # intra-op threads while a fast path runs (None: leave torch's setting); see intra_op_threads
WORKERS = os.cpu_count() or 1   # slices of a large batch run on this many Python threads at once
MIN_SLICE_POSITIONS = 4096      # ... when each slice has at least this many positions


def nz_rows(w: torch.Tensor) -> torch.Tensor:
    """Indices of the rows of w with a non-zero entry."""
    return torch.nonzero((w != 0).any(1)).flatten()


@dataclass
class SparseMap:
    """out[C, N] = W @ src[rows] for a mostly-zero W [C, R]: a dense block over the rows that many outputs
    read (`d_rows`, `d_w`), plus the other non-zeros as COO entries (`c_rows`, `c_cols`, `c_w`).
    Row indices refer to src (the residual for W_in, the hidden units for W_out)."""
    n_out: int
    d_rows: torch.Tensor | None = None
    d_w: torch.Tensor | None = None
    c_rows: torch.Tensor | None = None
    c_cols: torch.Tensor | None = None
    c_w: torch.Tensor | None = None
    macs: int = 0                 # multiply-adds per position
    nnz: int = 0

    @classmethod
    def build(cls, w: torch.Tensor, rows: torch.Tensor, n: int, src_rows: int = -1) -> SparseMap:
        """w: [C, len(rows)] dense, rows: the src row of each column, n: the positions it runs on, src_rows: the
        rows src has (when known). Keeps dense the k most-read rows, k chosen by the cost model above (dense
        multiply-adds, COO non-zeros, operations)."""
        n_out = w.shape[0]
        nz = w != 0
        deg = nz.sum(0)
        m = cls(n_out, nnz=int(nz.sum()))
        order = torch.argsort(deg, descending=True, stable=True).tolist()
        order = [j for j in order if deg[j] > 0]
        degs = deg[order].tolist()
        total = sum(degs)
        best, best_k, acc = OP_NS * 4 + n * COO_NS * total, 0, 0
        for k in range(1, len(order) + 1):
            acc += degs[k - 1]
            cost = OP_NS * (2 + 3 * (k < len(order))) + n * (MAC_NS * k * n_out + COO_NS * (total - acc))
            if cost < best:
                best, best_k = cost, k
        dense, rest = sorted(order[:best_k]), sorted(order[best_k:])
        if dense:
            m.d_rows = rows[dense]
            m.d_w = w[:, dense].contiguous()
            if len(dense) == len(rows) == src_rows and bool((rows == torch.arange(src_rows, device=rows.device)).all()):
                m.d_rows = None   # every row of src, in order: no gather
        if rest:
            sub = w[:, rest]
            cols, js = torch.nonzero(sub, as_tuple=True)
            m.c_rows = rows[torch.tensor(rest, dtype=torch.long, device=w.device)[js]]
            m.c_cols = cols
            m.c_w = sub[cols, js][:, None].contiguous()
        m.macs = len(dense) * n_out + (len(m.c_rows) if rest else 0)
        return m

    def __call__(self, src: torch.Tensor) -> torch.Tensor:
        """src: [R, ...] -> [n_out, prod(...)]."""
        if self.d_w is not None:
            g = src if self.d_rows is None else src.index_select(0, self.d_rows)
            out = self.d_w @ g.reshape(self.d_w.shape[1], -1)
        else:
            out = src.new_zeros(self.n_out, src[0].numel())
        if self.c_w is not None:
            g = src.index_select(0, self.c_rows)
            out.index_add_(0, self.c_cols, g.reshape(len(self.c_rows), -1) * self.c_w)
        return out

    def add_into(self, dst: torch.Tensor, dst_rows: torch.Tensor, src: torch.Tensor) -> None:
        """dst[dst_rows] += W @ src, for dst [D, N] (in place) and src [R, N]."""
        if self.d_w is None and self.c_w is not None:   # COO only: straight into dst
            dst.index_add_(0, dst_rows[self.c_cols], src.index_select(0, self.c_rows) * self.c_w)
        elif self.d_w is not None:
            dst.index_add_(0, dst_rows, self(src))


@dataclass
class Proj:
    """W @ x over the residual at every position: a SparseMap over the rows kept at every position (`full`), one
    over the lazy rows (read at positions 0 and 1, and broadcast), and, in a loop, one over the rows that no
    layer of the body writes (`const`): their product is the same on every pass, so it is computed once per
    batch and kept in the context (loop-invariant code motion)."""
    n_out: int
    full: SparseMap | None
    lazy: SparseMap | None
    const: SparseMap | None = None

    @classmethod
    def build(cls, w: torch.Tensor, lazy: torch.Tensor, const: torch.Tensor, n: int, n_two: int) -> Proj:
        """w: [C, D] over the residual; lazy, const: [D] bool."""
        rows = nz_rows(w.t())
        part = rows[lazy[rows]]
        rest = rows[~lazy[rows]]
        full, fixed = rest[~const[rest]], rest[const[rest]]
        return cls(w.shape[0], SparseMap.build(w[:, full], full, n) if len(full) else None,
                   SparseMap.build(w[:, part], part, n_two) if len(part) else None,
                   SparseMap.build(w[:, fixed], fixed, n) if len(fixed) else None)

    def __call__(self, flat: torch.Tensor, y: torch.Tensor, ctx: Context) -> torch.Tensor:
        out = self.full(flat) if self.full is not None else None
        if self.const is not None:
            fixed = ctx.cache.get(id(self))
            if fixed is None:
                fixed = ctx.cache[id(self)] = self.const(flat)
            out = fixed.clone() if out is None else out + fixed
        if out is None:
            out = flat.new_zeros(self.n_out, flat.shape[1])
        if self.lazy is not None:
            part = self.lazy(y.narrow(2, 0, 2)).view(self.n_out, ctx.b, 2)
            o3 = out.view(self.n_out, ctx.b, ctx.t)
            o3[:, :, :1] += part[:, :, :1]
            o3[:, :, 1:] += part[:, :, 1:]
        return out

    @property
    def macs(self) -> int:
        return self.full.macs if self.full is not None else 0


@dataclass
class HeadGroup:
    """Some heads of one layer, evaluated for every query (`shared=False`) or for BOS and position 1.

    A shared group multiplies W_Q W_K^T and W_V W_O out ahead of time: per row of the batch its scores are
    (x_q W_Q W_K^T) x_k, [G*2, rk] @ [rk, T], and its output (att x_v) W_V W_O."""
    shared: bool
    heads: int
    e: int
    q_rows: torch.Tensor
    k_rows: torch.Tensor
    v_rows: torch.Tensor
    q_lazy: torch.Tensor | None   # positions in q_rows (k_rows, v_rows) of rows kept only at positions 0, 1
    k_lazy: torch.Tensor | None
    v_lazy: torch.Tensor | None
    wq: torch.Tensor | None       # shared: W_Q W_K^T as [G*|k_rows|, |q_rows|]
    pq: Proj | None               # not shared: the projections, [G*e] each
    pk: Proj | None
    pv: Proj | None
    tau: torch.Tensor             # [G, 1, 1]: times max|x_q| max|x_k|, bounds a score difference's rounding
    o_rows: torch.Tensor          # rows written at every position
    wo: torch.Tensor              # [|o_rows|, G*e]; shared: W_V W_O as [|o_rows|, G*|v_rows|]
    ol_rows: torch.Tensor         # rows written at positions 0, 1 only (lazy rows; shared heads)
    wo_l: torch.Tensor
    k_const: bool = False         # a loop's keys read only rows that no layer of the body writes: gathered once


@dataclass
class UnitGroup:
    """Some hidden units of one layer's MLP: relu(W_in x) added through W_out."""
    shared: bool
    units: int
    w_in: SparseMap | None        # a shared group's W_in (reads residual rows at positions 0, 1)
    p_in: Proj | None             # a non-shared group's W_in
    out_rows: torch.Tensor
    w_out: SparseMap              # writes at every position
    outl_rows: torch.Tensor
    w_out_l: SparseMap | None     # a shared group's writes to lazy rows (positions 0, 1)


@dataclass
class NormPlan:
    in_rows: torch.Tensor
    w_in: torch.Tensor            # [2 * pairs, |in_rows|]
    eps: torch.Tensor             # [pairs]
    out_rows: torch.Tensor
    w_out: torch.Tensor           # [|out_rows|, 2 * pairs]


@dataclass
class LayerExec:
    heads: list[HeadGroup] = field(default_factory=list)
    mlp: list[UnitGroup] = field(default_factory=list)
    norm: NormPlan | None = None


@dataclass
class Plan:
    """Layers lo..hi-1 for one set of shared rows. `lazy` rows (a loop body's shared rows) are kept only at
    positions 0 and 1: at a later position the residual holds a stale value, and position 1's is the real
    one (`materialize` writes it out)."""
    layers: list[LayerExec]
    lazy: torch.Tensor
    shared: torch.Tensor


@dataclass
class Context:
    """What every layer of one batch shares: its shape, the present keys and the run-time switches."""
    b: int
    t: int
    key_off: torch.Tensor | None  # [B, 1, 1, T] keys absent (causal: [B, 1, T, T]); None: every key present
    pad: torch.Tensor             # [B, T] positions beyond each row's length
    spread: torch.Tensor          # [T] = 0, 1, 1, ..., 1
    hard: bool = True             # try the hard-attention path
    spec: bool = False            # assume every margin holds; the checks go into `ok`
    ok: list = field(default_factory=list)
    stats: dict = field(default_factory=lambda: {"hard_queries": 0, "soft_queries": 0})
    cache: dict = field(default_factory=dict)   # loop-invariant products and gathers of this batch


class FastModel:
    """A Transformer's layers prepared for the fast paths (built once per model, device and dtype)."""

    def __init__(self, model: Transformer, attention: str = "soft"):
        if attention not in ("hard", "soft"):
            raise ValueError("attention is 'hard' or 'soft'")
        self.model, self.attention, self.cfg = model, attention, model.config
        w0 = next(iter(model.w.values()))
        self.device, self.dtype = w0.device, w0.dtype
        self.d = model.p("embed.positions").shape[1]
        self.u = torch.finfo(self.dtype).eps / 2
        self.causal = bool(self.cfg["causal"])
        self.info = [self.layer_info(i) for i in range(self.cfg["n_layers"])]
        self.plans: dict = {}

    @classmethod
    def of(cls, model: Transformer, attention: str = "soft") -> FastModel:
        cache = model.__dict__.setdefault("_fast", {})
        w0 = next(iter(model.w.values()))
        key = (w0.device, w0.dtype, attention)
        if key not in cache:
            cache[key] = cls(model, attention)
        return cache[key]

    # ---- static structure --------------------------------------------------------------------------------
    def layer_info(self, i: int) -> dict:
        """Per head: the rows its queries read and its W_O writes; per MLP unit: the rows it reads and writes."""
        m, info = self.model, {}
        qkv, wo, w_in, w_out = m.packed(i)
        if qkv is not None:
            h = self.cfg["layers"][i]["heads"]
            e = qkv.shape[1] // (3 * h)
            wq, wk, wv = (t.reshape(self.d, h, e) for t in qkv.split(h * e, 1))
            wo = wo.reshape(h, e, self.d)
            info["attn"] = (h, e, wq, wk, wv, wo)
            info["q_read"] = (wq != 0).any(2).t().cpu()            # [H, D]
            info["o_write"] = (wo != 0).any(1).cpu()                # [H, D]
        if w_in is not None:
            units = torch.nonzero((w_in != 0).any(0) & (w_out != 0).any(1)).flatten()
            info["mlp"] = (w_in[:, units], w_out[units])
            info["u_read"] = (w_in[:, units] != 0).t().cpu()        # [U, D]
            info["u_write"] = (w_out[units] != 0).cpu()              # [U, D]
        n_in = m.p(f"layers.{i}.norm.W_in")
        if n_in is not None:
            info["norm"] = (n_in, m.p(f"layers.{i}.norm.W_out"),
                            torch.tensor(self.cfg["layers"][i]["norm_eps"], dtype=n_in.dtype, device=n_in.device))
            info["n_write"] = (info["norm"][1] != 0).any(0).cpu()
        return info

    def propagate(self, shared: torch.Tensor, lo: int, hi: int) -> tuple[list, torch.Tensor]:
        """Given the rows shared at layer lo's input ([D] bool, CPU): per layer, which heads and which units
        are shared, and the rows still shared after layer hi - 1."""
        s = shared.clone()
        which = []
        for i in range(lo, hi):
            info = self.info[i]
            heads = units = None
            if "attn" in info:
                heads = ~(info["q_read"] & ~s).any(1) & (not self.causal)
                s &= ~info["o_write"][~heads].any(0)
            if "mlp" in info:
                units = ~(info["u_read"] & ~s).any(1)
                s &= ~info["u_write"][~units].any(0)
            if "norm" in info:
                s &= ~info["n_write"]
            which.append((heads, units))
        return which, s

    def loop_shared(self, shared: torch.Tensor, body: int) -> torch.Tensor:
        """The largest subset of `shared` that a pass of the body keeps shared (a fixed point): no group that
        is not shared writes any of its rows, so they are shared after every pass, and at every layer."""
        while True:
            _, out = self.propagate(shared, 0, body)
            nxt = shared & out
            if bool((nxt == shared).all()):
                return shared
            shared = nxt

    def plan(self, shared: torch.Tensor, lo: int, hi: int, b: int, t: int, loop: bool = False) -> Plan:
        """The plan for layers lo..hi-1 on a batch of b rows of t positions; loop=True: `shared` is a
        loop_shared fixed point, kept lazily. Plans are cached per power-of-two batch size."""
        b = 1 << (max(b, 1) - 1).bit_length()
        key = (bytes(shared.numpy()), lo, hi, loop, b, t)
        if key not in self.plans:
            which, _ = self.propagate(shared, lo, hi)
            norms = any("norm" in self.info[i] for i in range(lo, hi))
            lazy = shared if loop and not norms else torch.zeros_like(shared)
            written = torch.zeros_like(shared)
            for i in range(lo, hi):
                for k in ("o_write", "u_write"):
                    if k in self.info[i]:
                        written |= self.info[i][k].any(0)
                if "n_write" in self.info[i]:
                    written |= self.info[i]["n_write"]
            const = ~written if loop else torch.zeros_like(shared)
            layers = [self.build(i, heads, units, lazy, const, b, t)
                      for i, (heads, units) in zip(range(lo, hi), which)]
            self.plans[key] = Plan(layers, torch.nonzero(lazy).flatten().to(self.device), shared)
        return self.plans[key]

    def build(self, i: int, heads_shared, units_shared, lazy: torch.Tensor, const: torch.Tensor, b: int,
              t: int) -> LayerExec:
        info, ex = self.info[i], LayerExec()
        dev = self.device
        lazy_d, const_d = lazy.to(dev), const.to(dev)
        if "attn" in info:
            h, e, wq, wk, wv, wo = info["attn"]
            for flag in (True, False):
                idx = torch.nonzero(heads_shared == flag).flatten().to(dev)
                if len(idx):
                    ex.heads.append(self.head_group(flag, idx, e, wq, wk, wv, wo, lazy_d, const_d, b, t))
        if "mlp" in info:
            w_in, w_out = info["mlp"]
            for flag in (True, False):
                idx = torch.nonzero(units_shared == flag).flatten().to(dev)
                if not len(idx):
                    continue
                wi, wo_ = w_in[:, idx], w_out[idx]
                rows = nz_rows(wi)
                units = torch.arange(len(idx), device=dev)
                out_rows = torch.nonzero((wo_ != 0).any(0)).flatten()
                n = 2 * b if flag else b * t
                if flag:   # reads at positions 0, 1; writes lazy rows there, the others at every position
                    o_full, o_lazy = out_rows[~lazy_d[out_rows]], out_rows[lazy_d[out_rows]]
                    m_in, p_in = SparseMap.build(wi[rows].t(), rows, n), None
                else:      # reads lazy rows at positions 0, 1 (broadcast); never writes a lazy row
                    o_full, o_lazy = out_rows, out_rows[:0]
                    assert not bool(lazy_d[out_rows].any())
                    m_in, p_in = None, Proj.build(wi.t(), lazy_d, const_d, n, 2 * b)
                ex.mlp.append(UnitGroup(
                    flag, len(idx), m_in, p_in,
                    o_full, SparseMap.build(wo_[:, o_full].t(), units, n, len(idx)),
                    o_lazy, SparseMap.build(wo_[:, o_lazy].t(), units, n, len(idx)) if len(o_lazy) else None))
        if "norm" in info:
            n_in, n_out, eps = info["norm"]
            pairs = torch.nonzero((n_in != 0).view(self.d, -1, 2).any(0).any(-1)
                                  | (n_out != 0).view(-1, 2, self.d).any(-1).any(-1)).flatten()
            cols = torch.stack([2 * pairs, 2 * pairs + 1], 1).flatten()
            in_rows, out_rows = nz_rows(n_in[:, cols]), torch.nonzero((n_out[cols] != 0).any(0)).flatten()
            ex.norm = NormPlan(in_rows, n_in[in_rows][:, cols].t().contiguous(), eps[pairs], out_rows,
                               n_out[cols][:, out_rows].t().contiguous())
        return ex

    def head_group(self, shared: bool, idx: torch.Tensor, e: int, wq, wk, wv, wo, lazy: torch.Tensor,
                   const: torch.Tensor, b: int, t: int) -> HeadGroup:
        g = len(idx)
        wq, wk, wv, wo = wq[:, idx], wk[:, idx], wv[:, idx], wo[idx]          # [D, G, e] and [G, e, D]
        qr, kr, vr = (nz_rows(w.reshape(self.d, -1)) for w in (wq, wk, wv))
        orow = torch.nonzero((wo != 0).reshape(-1, self.d).any(0)).flatten()
        wq_c, wk_c, wv_c = wq[qr], wk[kr], wv[vr]                               # [r, G, e]
        # first-order rounding bound of a score difference, per head, before the factor max|x_q| max|x_k|
        mass = (wq_c.abs().sum(0) * wk_c.abs().sum(0)).sum(-1)                  # [G]
        tau = (2 * (len(qr) + e + len(kr) + 3) * self.u * mass * 1.01).view(g, 1, 1)
        if shared:
            o_full, o_lazy = orow[~lazy[orow]], orow[lazy[orow]]
        else:
            o_full, o_lazy = orow, orow[:0]
            assert not bool(lazy[orow].any())

        def lazy_pos(rows):
            pos = torch.nonzero(lazy[rows]).flatten()
            return pos if len(pos) else None
        head = dict(shared=shared, heads=g, e=e, q_rows=qr, k_rows=kr, v_rows=vr,
                    q_lazy=None if shared else lazy_pos(qr), k_lazy=lazy_pos(kr), v_lazy=lazy_pos(vr), tau=tau,
                    o_rows=o_full, ol_rows=o_lazy, k_const=bool(const[kr].all()))
        if shared:   # products in float64, rounded once
            f64 = torch.float64
            wqk = torch.einsum("lge,rge->grl", wq_c.to(f64), wk_c.to(f64)).reshape(g * len(kr), len(qr))
            wvo = torch.einsum("rge,geo->gro", wv_c.to(f64), wo.to(f64)).reshape(g * len(vr), self.d)
            return HeadGroup(**head, wq=wqk.to(self.dtype).contiguous(), pq=None, pk=None, pv=None,
                             wo=wvo[:, o_full].t().to(self.dtype).contiguous(),
                             wo_l=wvo[:, o_lazy].t().to(self.dtype).contiguous())
        wo_c = wo.reshape(g * e, self.d)
        pq, pk, pv = (Proj.build(w.reshape(self.d, -1).t(), lazy, const, b * t, 2 * b) for w in (wq, wk, wv))
        return HeadGroup(**head, wq=None, pq=pq, pk=pk, pv=pv,
                         wo=wo_c[:, o_full].t().contiguous(), wo_l=wo_c[:, o_lazy].t().contiguous())

    # ---- layout and context ------------------------------------------------------------------------------
    @staticmethod
    def to_fm(x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> feature-major [D, B, T] (contiguous)."""
        return x.permute(2, 0, 1).contiguous()

    @staticmethod
    def from_fm(x: torch.Tensor) -> torch.Tensor:
        return x.permute(1, 2, 0)

    def context(self, lengths: torch.Tensor, t: int) -> Context:
        pos = torch.arange(t, device=lengths.device)
        present = pos[None, :] < lengths[:, None]                                # [B, T]
        key_ok = present[:, None, None, :]
        if self.causal:
            key_ok = key_ok & (pos[:, None] >= pos[None, :])[None, None]
        key_off = None if bool(key_ok.all()) else ~key_ok
        return Context(len(lengths), t, key_off, ~present, torch.clamp(pos, max=1), hard=self.attention == "hard")

    def shared_rows(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        """[D] bool (CPU): rows holding one value at every real position after BOS, in every row of the batch."""
        same = (x[:, :, 1:] == x[:, :, 1:2]) | ctx.pad[None, :, 1:]
        return same.flatten(1).all(1).cpu()

    @staticmethod
    def materialize(x: torch.Tensor, plan: Plan) -> torch.Tensor:
        """Write position 1's value of every lazy row to its later positions (in place); returns x."""
        if len(plan.lazy) and x.shape[2] > 2:
            x[plan.lazy, :, 2:] = x[plan.lazy, :, 1:2]
        return x

    # ---- running -----------------------------------------------------------------------------------------
    def run_plan(self, x: torch.Tensor, ctx: Context, plan: Plan, inplace: bool = False) -> torch.Tensor:
        """The plan's layers on x ([D, B, T]), or on a copy of it."""
        y = x if inplace else x.clone()
        for ex in plan.layers:
            self.layer(y, ctx, ex)
        return y

    def layer(self, y: torch.Tensor, ctx: Context, ex: LayerExec) -> None:
        """One layer, in place: every read of a sublayer happens before its writes."""
        flat = y.view(self.d, -1)
        if ex.heads:
            outs = [self.attend(y, g, ctx) for g in ex.heads]
            for g, o in zip(ex.heads, outs):
                if g.shared:
                    if len(g.o_rows):
                        self.add_spread(flat, g.o_rows, g.wo @ o, ctx)
                    if len(g.ol_rows):
                        y.narrow(2, 0, 2).index_add_(0, g.ol_rows, (g.wo_l @ o).view(len(g.ol_rows), ctx.b, 2))
                else:
                    flat.index_add_(0, g.o_rows, g.wo @ o)
        self.mlp(y, ctx, ex)

    def mlp(self, y: torch.Tensor, ctx: Context, ex: LayerExec) -> None:
        """A layer's MLP and LayerNorms, in place (both read y before either writes)."""
        flat = y.view(self.d, -1)
        if ex.mlp or ex.norm:
            hs = [self.hidden(g, flat, y, ctx) for g in ex.mlp]
            if ex.norm is not None:
                n = ex.norm
                v = layer_norm_pairs((n.w_in @ flat.index_select(0, n.in_rows)).t(), n.eps).t()
                flat.index_add_(0, n.out_rows, n.w_out @ v)
            for g, h in zip(ex.mlp, hs):
                if g.shared:
                    if len(g.out_rows):
                        self.add_spread(flat, g.out_rows, g.w_out(h), ctx)
                    if g.w_out_l is not None:
                        y.narrow(2, 0, 2).index_add_(0, g.outl_rows, g.w_out_l(h).view(len(g.outl_rows), ctx.b, 2))
                else:
                    g.w_out.add_into(flat, g.out_rows, h)

    @staticmethod
    def hidden(g: UnitGroup, flat: torch.Tensor, y: torch.Tensor, ctx: Context) -> torch.Tensor:
        """relu(W_in x) for a unit group: [U, B*2] when shared, else [U, B*T]."""
        if g.shared:
            return torch.relu(g.w_in(y.narrow(2, 0, 2)))
        return torch.relu(g.p_in(flat, y, ctx))

    @staticmethod
    def add_spread(flat: torch.Tensor, rows: torch.Tensor, o: torch.Tensor, ctx: Context) -> None:
        """flat[rows] += o at every position, o ([R, B*2]) holding BOS's value and every later position's."""
        flat.index_add_(0, rows, o.view(len(rows), ctx.b, 2).index_select(2, ctx.spread).view(len(rows), -1))

    @staticmethod
    def gather(y: torch.Tensor, rows: torch.Tensor, lazy_pos: torch.Tensor | None) -> torch.Tensor:
        """y[rows] ([r, B, T]), lazy rows written out from position 1."""
        g = y.index_select(0, rows)
        if lazy_pos is not None and g.shape[2] > 2:
            g[lazy_pos, :, 2:] = g[lazy_pos, :, 1:2]
        return g

    def attend(self, y: torch.Tensor, g: HeadGroup, ctx: Context) -> torch.Tensor:
        """The group's output before W_O ([G*e, B*T]); for a shared group before W_V W_O ([G*rv, B*2])."""
        b, t, h, e = ctx.b, ctx.t, g.heads, g.e
        if g.shared:   # per row of the batch: [G*2, rk] @ [rk, T]; no [T, T] and no copy per head
            xk = ctx.cache.get(id(g)) if g.k_const else None
            if xk is None:
                xk = self.gather(y, g.k_rows, g.k_lazy)                           # [rk, B, T]
                if g.k_const:
                    ctx.cache[id(g)] = xk
            xv = self.gather(y, g.v_rows, g.v_lazy)
            xq = y.narrow(2, 0, 2).index_select(0, g.q_rows)                        # [rq, B, 2]
            rk = len(g.k_rows)
            qk = (g.wq @ xq.view(len(g.q_rows), -1)).view(h, rk, b, 2).permute(2, 0, 3, 1).reshape(b, h * 2, rk)
            scores = torch.bmm(qk, xk.permute(1, 0, 2)).view(b, h, 2, t)              # [B, G, 2, T]
            xmax = (xq.abs().amax() * xk.abs().amax()) if ctx.hard else None
        else:
            flat = y.view(self.d, -1)
            q = g.pq(flat, y, ctx).view(h, e, b, t).permute(2, 0, 3, 1)              # [B, G, T, e]
            k = g.pk(flat, y, ctx).view(h, e, b, t).permute(2, 0, 3, 1)
            scores = q @ k.transpose(-1, -2)                                          # [B, G, T, T]
            xmax = flat.abs().amax() ** 2 if ctx.hard else None
        if ctx.key_off is not None:
            scores = scores.masked_fill(ctx.key_off, float("-inf"))
        att = self.attention_weights(scores, g.tau * xmax if ctx.hard
                                     else None, ctx, ctx.pad if not g.shared else None)
        if g.shared:   # (att x_v) as [G*rv, B*2], for W_V W_O
            z = torch.bmm(att.view(b, h * 2, t), xv.permute(1, 2, 0))                 # [B, G*2, rv]
            return z.view(b, h, 2, -1).permute(1, 3, 0, 2).reshape(-1, b * 2)
        v = g.pv(flat, y, ctx).view(h, e, b, t).permute(2, 0, 3, 1)
        out = att @ v                                                                # [B, G, T, e]
        return out.permute(1, 3, 0, 2).reshape(h * e, b * t)

    def attention_weights(self, scores: torch.Tensor, tau: torch.Tensor | None, ctx: Context,
                          pad: torch.Tensor | None) -> torch.Tensor:
        """Softmax weights, or the hard ones where a query's margin holds ([B, G, Tq, T]; tau: [G, 1, 1]).
        Under ctx.spec the margins are assumed and their check goes into ctx.ok (pad: query rows not checked)."""
        if tau is None:
            return torch.softmax(scores, -1)
        tied, n, ok = self.margins(scores, tau, scores.shape[-1])
        hard = tied.to(scores.dtype) / n.clamp_min(1)[..., None].to(scores.dtype)
        if ctx.spec:
            ctx.ok.append((ok if pad is None else ok | pad[:, None, :]).all())
            return hard
        ctx.stats["hard_queries"] += int(ok.sum())
        ctx.stats["soft_queries"] += int((~ok).sum())
        return torch.where(ok[..., None], hard, torch.softmax(scores, -1))

    def margins(self, scores: torch.Tensor, tau: torch.Tensor, t: int):
        """(tied, count, ok) per query: the keys within tau of the top score, and whether every other present
        key is at least M = ln T + ln(1/u) + 1 below it (so that T exp(-M) < u)."""
        big_m = math.log(max(t, 2)) - math.log(self.u) + 1
        top = scores.amax(-1, keepdim=True)
        tied = scores >= top - tau
        near = scores > top - big_m
        n = tied.sum(-1)
        ok = (near == tied).all(-1) & (n >= 1) & (tau < big_m / 4).view(1, -1, 1)
        return tied, n, ok

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Every layer once, like Transformer.forward: [B, T] ids -> [B, T, D]; every margin decided per query."""
        x, _ = self.model.embed(ids, lengths)
        ctx = self.context(lengths, ids.shape[1])
        x = self.to_fm(x)
        plan = self.plan(self.shared_rows(x, ctx), 0, self.cfg["n_layers"], ctx.b, ctx.t)
        return self.from_fm(self.run_plan(x, ctx, plan))

    @torch.no_grad()
    def run(self, batch: list[list]) -> list[dict[str, list]]:
        """Decoded outputs, like Transformer.run."""
        ids, lengths = self.model.encode(batch)
        return self.model.decode(self.forward(ids, lengths), lengths)

    # ---- cost --------------------------------------------------------------------------------------------
    def cost(self, plan: Plan, t: int, lo: int = 0) -> dict:
        """Multiply-adds and bytes of one pass of `plan` over one sequence of t positions, next to the dense
        forward pass's over the same layers. Weight bytes count each stored weight once (a COO entry as a value
        and an index); activation bytes count every tensor a step reads or writes once per read or write
        (gathers, projections, scores, hidden units, added rows). A COO non-zero counts as one multiply-add
        (`fast_coo` says how many of them there are); `fast_ops` and `dense_ops` count tensor operations."""
        size = torch.finfo(self.dtype).bits // 8
        d = self.d
        c = dict.fromkeys(("dense_macs", "fast_macs", "dense_weights", "fast_weights", "dense_acts", "fast_acts",
                           "fast_coo"), 0)
        c["fast_ops"] = c["dense_ops"] = LOOP_OPS

        def run_map(m: SparseMap | Proj | None, n: int) -> None:
            """A SparseMap or Proj run on n positions."""
            if m is None:
                return
            if isinstance(m, Proj):
                run_map(m.full, n)
                run_map(m.lazy, 2)
                c["fast_ops"] += 3 * (m.lazy is not None) + (m.full is None)
                c["fast_acts"] += 2 * n * m.n_out if m.lazy is not None else 0
                return
            reads = len(m.d_rows) if m.d_rows is not None else (m.d_w.shape[1] if m.d_w is not None else 0)
            coo = len(m.c_rows) if m.c_rows is not None else 0
            c["fast_macs"] += n * m.macs
            c["fast_coo"] += n * coo
            c["fast_weights"] += (m.d_w.numel() if m.d_w is not None else 0) + 2 * coo
            c["fast_acts"] += n * (2 * reads + 3 * coo + m.n_out)
            c["fast_ops"] += (m.d_w is not None) * (1 + (m.d_rows is not None)) + 3 * (coo > 0) + (m.d_w is None)

        for i, ex in enumerate(plan.layers, start=lo):
            lc = self.cfg["layers"][i]
            c["dense_ops"] += DENSE_OPS_PER_LAYER
            if lc.get("heads"):
                h, e = lc["heads"], lc["d_head"]
                c["dense_macs"] += t * 4 * d * h * e + 2 * h * t * t * e
                c["dense_weights"] += 4 * d * h * e
                c["dense_acts"] += 4 * t * d + 5 * h * t * e + 2 * h * t * t
            for g in ex.heads:
                c["fast_ops"] += 16 + 12 * (self.attention == "hard") + 2 * (g.k_lazy is not None) \
                    + 2 * (g.v_lazy is not None)
                r_out, r_lazy = len(g.o_rows), len(g.ol_rows)
                c["fast_weights"] += sum(w.numel() for w in (g.wq, g.wo, g.wo_l) if w is not None)
                if g.shared:
                    rq, rk, rv = len(g.q_rows), len(g.k_rows), len(g.v_rows)
                    c["fast_macs"] += 2 * g.wq.numel() + 2 * g.heads * t * (rk + rv) \
                        + 2 * (g.wo.numel() + g.wo_l.numel())
                    c["fast_acts"] += 2 * t * (rk + rv) + 2 * rq + 6 * g.heads * t + 3 * t * r_out + 4 * r_lazy
                else:
                    for p in (g.pq, g.pk, g.pv):
                        run_map(p, t)
                    c["fast_macs"] += 2 * g.heads * t * t * g.e + t * g.wo.numel()
                    c["fast_acts"] += 3 * g.heads * t * t + 3 * t * g.heads * g.e + 3 * t * r_out
            if lc.get("d_mlp"):
                c["dense_macs"] += 2 * t * d * lc["d_mlp"]
                c["dense_weights"] += 2 * d * lc["d_mlp"]
                c["dense_acts"] += 4 * t * d + 2 * t * lc["d_mlp"]
            for g in ex.mlp:
                n = 2 if g.shared else t
                for m, nn in ((g.w_in, n), (g.p_in, n), (g.w_out, n), (g.w_out_l, 2)):
                    run_map(m, nn)
                c["fast_acts"] += 2 * n * g.units + (3 * t * len(g.out_rows) if g.shared else 0)
                c["fast_ops"] += 2 + 2 * g.shared + (g.w_out_l is not None)
            if ex.norm is not None:
                nw = ex.norm.w_in.numel() + ex.norm.w_out.numel()
                c["dense_macs"] += 2 * t * d * ex.norm.w_in.shape[0]
                c["dense_weights"] += 2 * d * ex.norm.w_in.shape[0]
                c["fast_macs"] += t * nw
                c["fast_weights"] += nw
                c["fast_acts"] += t * (len(ex.norm.in_rows) + 4 * ex.norm.w_in.shape[0] + 3 * len(ex.norm.out_rows))
                c["fast_ops"] += 8
        for k in ("dense_weights", "fast_weights", "dense_acts", "fast_acts"):
            c[k] *= size
        c["dense_bytes"] = c["dense_weights"] + c["dense_acts"]
        c["fast_bytes"] = c["fast_weights"] + c["fast_acts"]
        return c

    def seconds(self, plan: Plan, b: int, t: int, lo: int = 0) -> tuple[float, float]:
        """(dense, fast): one pass's time for b rows by the cost model (MAC_NS, COO_NS, OP_NS)."""
        c = self.cost(plan, t, lo)
        dense = 1e-9 * (b * c["dense_macs"] * MAC_NS + c["dense_ops"] * OP_NS)
        fast = 1e-9 * (b * ((c["fast_macs"] - c["fast_coo"]) * MAC_NS + c["fast_coo"] * COO_NS) + c["fast_ops"] * OP_NS)
        return dense, fast


# ---- choosing and running -------------------------------------------------------------------------------------
@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op threads set to n while the block runs (n=None: unchanged).

    The fast paths run many small operations. On this project's shared 2-core CPU a second OpenMP thread made
    them 5 to 40 times slower (threads waiting on each other while other processes hold the cores), so they run
    on one thread (THREADS); a large batch runs as slices of at most SPLIT_POSITIONS positions. The dense loop
    and decoder (runtime.loop.run_loop, runtime.generate.generate) run a batch of at most SPLIT_POSITIONS
    positions on THREADS too."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def prefer_fast(model: Transformer, batch: list[list]) -> bool:
    """Whether the cost model expects the fast paths to beat the dense pass on this batch (one pass of a loop
    body, or one pass of all layers). Tiny models are quicker dense: each fast operation has a fixed cost."""
    fm = FastModel.of(model)
    hi = model.config.get("loop", {}).get("body_layers", model.config["n_layers"])
    if "generate" in model.config:   # one decoding step: one position per row, nothing shared
        b = len(batch)
        dense, fast_s = fm.seconds(fm.plan(torch.zeros(fm.d, dtype=torch.bool), 0, hi, b, 1), b, 1)
        return fast_s < dense
    ids, lengths = model.encode(batch[:1])
    x = fm.to_fm(model.embed(ids, lengths)[0])
    ctx = fm.context(lengths, ids.shape[1])
    shared = fm.shared_rows(x, ctx)
    loop = "loop" in model.config
    if loop:
        shared = fm.loop_shared(shared, hi)
    t = max(len(r) for r in batch) + 1
    b = min(len(batch), max(1, SPLIT_POSITIONS // t))
    dense, fast_s = fm.seconds(fm.plan(shared, 0, hi, b, t, loop=loop), b, t)
    return fast_s < dense


# ---- the loop ------------------------------------------------------------------------------------------------
def flag_fm(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """A 0/1 flag register (bit 0) at the first input position of every row of a feature-major residual."""
    return x[dims[0], :, 1] > 0.5


@torch.no_grad()
def run_loop_fast(model: Transformer, batch: list[list], max_steps: int = 10_000, progress: bool = False,
                  on_step=None, attention: str = "soft", stats: dict | None = None):
    """runtime.loop.run_loop on the fast paths, with the same results (see the module docstring).

    A batch of more than SPLIT_POSITIONS positions runs as independent slices (machines never interact), and so
    does one large enough to keep WORKERS threads busy with MIN_SLICE_POSITIONS each; slices run on WORKERS
    Python threads at once (torch releases the interpreter lock inside its operations)."""
    t = max(len(x) for x in batch) + 1 if batch else 1
    slices = max(-(-len(batch) * t // SPLIT_POSITIONS), min(WORKERS, len(batch) * t // MIN_SLICE_POSITIONS), 1)
    if slices > 1:   # a multiple of WORKERS, so that the threads finish together
        slices = -(-slices // WORKERS) * WORKERS
    per = max(1, -(-len(batch) // slices))
    starts = range(0, len(batch), per)

    def one(i: int) -> list:
        return _run_loop_fast(model, batch[i:i + per], max_steps, progress and i == 0, on_step if i == 0 else None,
                              attention, stats if i == 0 else None)
    with intra_op_threads(THREADS):
        if len(starts) == 1 or WORKERS == 1:
            return [r for i in starts for r in one(i)]
        with concurrent.futures.ThreadPoolExecutor(min(WORKERS, len(starts))) as pool:
            return [r for part in pool.map(one, starts) for r in part]


def _run_loop_fast(model: Transformer, batch: list[list], max_steps: int, progress: bool, on_step, attention: str,
                   stats: dict | None):
    """Passes update the residual in place. A chunk keeps its starting residual, so that it can run again when
    an assumed margin failed, and so that a row that halted inside the chunk can be brought back to the state
    before its halting pass (by running it again from the start for the passes before it)."""
    from .loop import LoopResult, decode_register, progress_bar
    fm = FastModel.of(model, attention)
    loop = model.config["loop"]
    body, n_layers, flags = loop["body_layers"], model.config["n_layers"], loop["flags"]
    ids, lengths = model.encode(batch)
    all_lengths = lengths
    x = fm.to_fm(model.embed(ids, lengths)[0])
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
    bar = progress_bar(max_steps, progress)
    emit_rows = torch.tensor(flags.get("emit_val", []), dtype=torch.long, device=dev)
    assume_hard = ctx.hard
    done, chunk, redone = 0, 1, 0
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
        chunk = min(2 * chunk, MAX_CHUNK)
    bar.close()
    final[:, active] = x
    halted_all[active] = halted
    steps_all[active] = steps
    if stats is not None:
        stats.update(assume_hard=assume_hard, redone_chunks=redone, shared_rows=int(shared.sum()),
                     **run_stats)
    fm.materialize(final, plan)
    if body < n_layers:
        ctx = fm.context(all_lengths, t)
        final = fm.run_plan(final, ctx, fm.plan(fm.shared_rows(final, ctx), body, n_layers, b, t))
    outputs = model.decode(fm.from_fm(final), all_lengths)
    return [LoopResult(outputs[r], int(steps_all[r]), bool(halted_all[r]), emitted[r]) for r in range(b)]


def replay(fm: FastModel, x: torch.Tensor, passes: torch.Tensor, ctx: Context, plan: Plan):
    """Each row of x after its own number of passes (every margin decided per query)."""
    x = x.contiguous()
    for p in range(1, int(passes.max()) + 1 if len(passes) else 1):
        y = fm.run_plan(x, ctx, plan)
        x = torch.where((p <= passes)[None, :, None], y, x)
    return x
