"""The weights of one head or one MLP read in the residual stream's labels: a head's QK view (which query dims
meet which key dims, per unit of λ) and OV view (which dims it moves where), an MLP's hidden units.

Everything here comes from the weights and the labels alone, so a weight file without its program gets the
same views; the page names the dims with the program's names where it has them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TINY = 1e-6
MOST = 40  # the most rows or columns a weight view shows (the largest by magnitude)


@dataclass
class Matrix:
    """A [rows, cols] block of a d_model x d_model map, rows and cols being residual dims."""
    values: np.ndarray
    rows: list[int]
    cols: list[int]
    cut: int = 0   # rows or columns left out (all non-zero, smaller than those shown)


def weight(t, name: str) -> np.ndarray | None:
    p = t.p(name)
    return None if p is None else p.detach().cpu().numpy().astype(np.float64)


def scale(t, layer: int, head: int) -> float:
    """λ: the head's softmax scale as the config records it (the compiler folded it into W_Q)."""
    scales = t.config["layers"][layer - 1].get("scales") or []
    return float(scales[head]) if head < len(scales) else 1.0


def trimmed(m: np.ndarray) -> Matrix:
    """The non-zero rows and columns of a square map, at most MOST of each (the largest)."""
    def keep(mag: np.ndarray) -> tuple[list[int], int]:
        idx = [int(i) for i in np.flatnonzero(mag > TINY)]
        if len(idx) <= MOST:
            return idx, 0
        top = sorted(sorted(idx, key=lambda i: -mag[i])[:MOST])
        return top, len(idx) - MOST
    rows, cut_r = keep(np.abs(m).max(axis=1))
    cols, cut_c = keep(np.abs(m).max(axis=0))
    return Matrix(m[np.ix_(rows, cols)], rows, cols, max(cut_r, cut_c))


def qk(t, layer: int, head: int) -> Matrix:
    """W_Q W_Kᵀ / λ: entry (i, j) is what a query's dim i times a key's dim j adds to the score, per unit of λ."""
    wq, wk = weight(t, f"layers.{layer - 1}.attn.W_Q")[head], weight(t, f"layers.{layer - 1}.attn.W_K")[head]
    return trimmed(wq @ wk.T / scale(t, layer, head))


def ov(t, layer: int, head: int) -> Matrix:
    """W_V W_O: entry (i, j) is how much of the attended key's dim i the head adds to the query's dim j."""
    wv, wo = weight(t, f"layers.{layer - 1}.attn.W_V")[head], weight(t, f"layers.{layer - 1}.attn.W_O")[head]
    return trimmed(wv @ wo)


@dataclass
class Units:
    """Some hidden units of one MLP: what each reads (W_in rows), writes (W_out columns), and its ReLU activity."""
    units: list[int]
    reads: Matrix      # [input dims, units]
    writes: Matrix     # [units, output dims]
    activity: np.ndarray  # [units, positions]: relu(x W_in) on this input


def largest(mag: np.ndarray) -> list[int]:
    """The indices of the non-zero entries of `mag`, at most MOST of them (the largest), in order."""
    idx = [int(i) for i in np.flatnonzero(mag > TINY)]
    return idx if len(idx) <= MOST else sorted(sorted(idx, key=lambda i: -mag[i])[:MOST])


def unit_owner(t, layer: int) -> np.ndarray | None:
    """Each hidden unit of the layer's MLP: the first residual dim it writes (-1 for none), or None (no MLP)."""
    w_out = weight(t, f"layers.{layer - 1}.mlp.W_out")
    if w_out is None:
        return None
    mag = np.abs(w_out) > TINY
    return np.where(mag.any(axis=1), mag.argmax(axis=1), -1)


def units(t, layer: int, mid: np.ndarray, which: list[int]) -> Units:
    """The units `which` of layer's MLP on the residual `mid` that MLP read ([positions, d])."""
    w_in, w_out = weight(t, f"layers.{layer - 1}.mlp.W_in"), weight(t, f"layers.{layer - 1}.mlp.W_out")
    sub_in, sub_out = w_in[:, which], w_out[which]
    r = largest(np.abs(sub_in).sum(axis=1)) if which else []
    c = largest(np.abs(sub_out).sum(axis=0)) if which else []
    act = np.maximum(mid @ sub_in, 0.0).T if which else np.zeros((0, mid.shape[0]))
    return Units(which, Matrix(sub_in[r], r, list(which)), Matrix(sub_out[:, c], list(which), c), act)


def norm_pairs(t, layer: int) -> list[tuple[list[int], list[int]]]:
    """The layer's pair LayerNorms: for each normalised pair, the dims it reads and the dims it writes."""
    n_in, n_out = weight(t, f"layers.{layer - 1}.norm.W_in"), weight(t, f"layers.{layer - 1}.norm.W_out")
    if n_in is None:
        return []
    out = []
    for p in range(n_in.shape[1] // 2):
        cols = n_in[:, 2 * p:2 * p + 2]
        rows = n_out[2 * p:2 * p + 2]
        out.append(([int(i) for i in np.flatnonzero(np.abs(cols).max(axis=1) > TINY)],
                    [int(i) for i in np.flatnonzero(np.abs(rows).max(axis=0) > TINY)]))
    return out
