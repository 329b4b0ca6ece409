"""Fast execution paths for compiled weights: the same decoded results as the plain dense pass, far fewer FLOPs.

Long: the plan of one pass (which rows are shared, which blocks compacted) and its execution are one idea; the
kernels are apart (sparse.py, hard_attention.py), and so are the cost model (fast_cost.py) and loops (fast_loop.py).

The dense pass (runtime/model.py) multiplies every residual dimension by every weight at every position.
Compiled weights are nearly all zeros (SUBLEQ with 256 words of 16 bits: 9,073 of 526,032 parameters are
non-zero), and a looped program's registers hold the same value at every position. This module runs the
same layers with only what they touch. docs/performance.md gives the argument for each path and the
measurements.

The fast paths, and the module each lives in:

- **Compacted layers** (runtime/sparse.py: `SparseMap`, `Proj`). The residual is kept feature-major,
  `X[D, B, T]`, so reading rows is a contiguous gather and writing them is one `index_add_`. Each weight
  block keeps its non-zero rows, units and columns: dense where the cost model says so, the rest as COO.
- **Shared rows** (here: `FastModel.propagate`, `loop_shared`, `Plan.lazy`). Rows that hold one value at
  every position after BOS, and the MLP units and non-causal heads that read only such rows, are evaluated
  at BOS and position 1 only. In a loop, the rows are a fixed point of that propagation and are kept lazily
  (at positions 0 and 1).
- **Loop-invariant code** (`Proj.const`, `HeadGroup.k_const`). What reads only rows that no layer of the
  body writes is computed once per batch.
- **Hard attention** (runtime/hard_attention.py, `attention="hard"`). Per query, from the scores: where
  every other key is at least M = ln T + ln(1/u) + 1 below the top (up to ties within the rounding bound
  tau), the head's output is the exact mean of the tied keys' values; elsewhere the softmax.
- **The loop** (runtime/fast_loop.py: `run_loop_fast`). Passes run in place, in chunks with no host sync. An
  assumed margin that fails re-runs the chunk, deciding every query. A row that halts inside a chunk is
  replayed to the pass before its halting pass. Large batches run as slices on threads (runtime/threads.py).
- **The cost model** (runtime/fast_cost.py) counts one pass's work and picks the fast or the dense path.

Residuals are not bit-identical to the dense pass's: sums run over fewer terms, in another order, and a
shared value is computed once. Decoded outputs, step counts, emitted values and halting are equal, and
tests/test_fast.py checks that on every program, on random programs, and on the SUBLEQ and Turing machine
corpora.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hardwire.runtime.context import Context
from hardwire.runtime.hard_attention import attention_weights
from hardwire.runtime.model import Transformer, layer_norm_pairs
from hardwire.runtime.sparse import Proj, SparseMap, nz_rows


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


class FastModel:
    """A Transformer's layers prepared for the fast paths (built once per model, device and dtype)."""

    def __init__(self, model: Transformer, attention: str = "soft"):
        if attention not in ("hard", "soft"):
            raise ValueError("attention is 'hard' or 'soft'")
        self.model, self.attention, self.cfg = model, attention, model.config
        w0 = next(iter(model.w.values()))
        self.device, self.dtype = w0.device, w0.dtype
        self.d = model.d_model
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
        att = attention_weights(scores, g.tau * xmax if ctx.hard else None, ctx,
                                ctx.pad if not g.shared else None, self.u)
        if g.shared:   # (att x_v) as [G*rv, B*2], for W_V W_O
            z = torch.bmm(att.view(b, h * 2, t), xv.permute(1, 2, 0))                 # [B, G*2, rv]
            return z.view(b, h, 2, -1).permute(1, 3, 0, 2).reshape(-1, b * 2)
        v = g.pv(flat, y, ctx).view(h, e, b, t).permute(2, 0, 3, 1)
        out = att @ v                                                                # [B, G, T, e]
        return out.permute(1, 3, 0, 2).reshape(h * e, b * t)

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
