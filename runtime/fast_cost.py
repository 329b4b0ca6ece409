"""The fast paths' cost model: multiply-adds, bytes and tensor operations of one pass, and the choice between the
fast paths and the dense pass (tiny models are quicker dense: each fast operation has a fixed cost)."""
from __future__ import annotations

import torch
from hardwire.runtime.fast import FastModel, Plan
from hardwire.runtime.model import Transformer
from hardwire.runtime.sparse import COO_NS, MAC_NS, OP_NS, Proj, SparseMap
from hardwire.runtime.threads import SPLIT_POSITIONS

DENSE_OPS_PER_LAYER = 16    # tensor operations of one dense layer (runtime/model.py), for the same model
LOOP_OPS = 8           # the loop's own operations per pass (flags, halting, emitted values)


def cost(fm: FastModel, plan: Plan, t: int, lo: int = 0) -> dict:
    """Multiply-adds and bytes of one pass of `plan` over one sequence of t positions, next to the dense
    forward pass's over the same layers. Weight bytes count each stored weight once (a COO entry as a value
    and an index); activation bytes count every tensor a step reads or writes once per read or write
    (gathers, projections, scores, hidden units, added rows). A COO non-zero counts as one multiply-add
    (`fast_coo` says how many of them there are); `fast_ops` and `dense_ops` count tensor operations."""
    size = torch.finfo(fm.dtype).bits // 8
    d = fm.d
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
        lc = fm.cfg["layers"][i]
        c["dense_ops"] += DENSE_OPS_PER_LAYER
        if lc.get("heads"):
            h, e = lc["heads"], lc["d_head"]
            c["dense_macs"] += t * 4 * d * h * e + 2 * h * t * t * e
            c["dense_weights"] += 4 * d * h * e
            c["dense_acts"] += 4 * t * d + 5 * h * t * e + 2 * h * t * t
        for g in ex.heads:
            c["fast_ops"] += 16 + 12 * (fm.attention == "hard") + 2 * (g.k_lazy is not None) \
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

def seconds(fm: FastModel, plan: Plan, b: int, t: int, lo: int = 0) -> tuple[float, float]:
    """(dense, fast): one pass's time for b rows by the cost model (MAC_NS, COO_NS, OP_NS)."""
    c = cost(fm, plan, t, lo)
    dense = 1e-9 * (b * c["dense_macs"] * MAC_NS + c["dense_ops"] * OP_NS)
    fast = 1e-9 * (b * ((c["fast_macs"] - c["fast_coo"]) * MAC_NS + c["fast_coo"] * COO_NS) + c["fast_ops"] * OP_NS)
    return dense, fast


def pass_plan(model: Transformer, seq: list, b: int = 1, t: int | None = None) -> tuple[FastModel, Plan, int]:
    """(fm, plan, t) for one pass (a loop's body, else every layer) with the rows shared in input seq, as a batch
    of b rows of t positions runs it (t: seq's own length by default)."""
    fm = FastModel.of(model)
    ids, lengths = model.encode([seq])
    x = fm.to_fm(model.embed(ids, lengths)[0])
    shared = fm.shared_rows(x, fm.context(lengths, ids.shape[1]))
    loop = "loop" in model.config
    hi = model.config["loop"]["body_layers"] if loop else model.config["n_layers"]
    if loop:
        shared = fm.loop_shared(shared, hi)
    t = ids.shape[1] if t is None else t
    return fm, fm.plan(shared, 0, hi, b, t, loop=loop), t


def prefer_fast(model: Transformer, batch: list[list]) -> bool:
    """Whether the cost model expects the fast paths to beat the dense pass on this batch (one pass of a loop
    body, or one pass of all layers). Tiny models are quicker dense: each fast operation has a fixed cost."""
    fm = FastModel.of(model)
    hi = model.config.get("loop", {}).get("body_layers", model.config["n_layers"])
    if "generate" in model.config:   # one decoding step: one position per row, nothing shared
        b = len(batch)
        dense, fast_s = seconds(fm, fm.plan(torch.zeros(fm.d, dtype=torch.bool), 0, hi, b, 1), b, 1)
        return fast_s < dense
    t = max(len(r) for r in batch) + 1
    b = min(len(batch), max(1, SPLIT_POSITIONS // t))
    fm, plan, t = pass_plan(model, batch[0], b, t)
    dense, fast_s = seconds(fm, plan, b, t)
    return fast_s < dense

