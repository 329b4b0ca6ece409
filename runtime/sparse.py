"""Compacted weight blocks: a mostly-zero matrix kept as a dense block over its most-read rows plus COO entries.

The fast paths (runtime/fast.py) store every projection and MLP this way. Which rows go into the dense block is
chosen per block and batch size by a cost model measured on this project's 2-thread CPU (torch 2.13).
Exact: the dropped terms are products with weights that are exactly 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from hardwire.runtime.context import Context

MAC_NS = 0.07          # one multiply-add of a dense block, per position
COO_NS = 0.7           # one gathered, scaled and index-added non-zero, per position
OP_NS = 6000.0         # one tensor operation's fixed cost


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

