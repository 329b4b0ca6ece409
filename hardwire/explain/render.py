"""The views both kinds of page share, written from the weights and one forward pass: a head's λ, QK view, raw
scores, pattern and OV view; an MLP's hidden units; a pair LayerNorm; the residual stream after a layer; with
the TransformerLens hook names that reproduce each view (hardwire/export/tl.py's numbering: layer L of this
page is `blocks.{L-1}`, head L.h is head index h-1).

A mixin: the page provides `t` (the runtime Transformer), `fwd` (trace.Forward), `labels` (a label per dim, in
the program's words where there is a program) and `positions`.
"""
from __future__ import annotations

import numpy as np

from hardwire.explain import views
from hardwire.explain.markup import code, esc, fold
from hardwire.explain.svg import Heat, heatmap
from hardwire.explain.trace import Forward
from hardwire.export.tl import ATTN_SCALE

FLAG = ("=", ".b", "bos")  # labels of dims that only hold 0 or 1
UNITS = 48  # the most hidden units of one block drawn


def tl_head(layer: int, head: int) -> str:
    """`L0H1`: TransformerLens's name for head `layer.head+1` of this page."""
    return f"L{layer - 1}H{head}"


def hook(text: str) -> str:
    return f'<code class="hook">{esc(text)}</code>'


class Render:
    """Model-only views (see the module docstring)."""
    t: object
    fwd: Forward
    labels: list[str]
    positions: list[str]
    shown: list[int]

    def lab(self, dims: list[int]) -> list[str]:
        return [self.labels[d] for d in dims]

    def qpos(self) -> list[str]:
        return [f"q{p}" for p in self.positions]

    def kpos(self) -> list[str]:
        return [f"k{p}" for p in self.positions]

    def weight_view(self, m: views.Matrix, rows: str, cols: str, what: str, tip: str) -> str:
        if not m.rows or not m.cols:
            return f"<p class=small>{esc(what)}: all zero.</p>"
        lim = float(np.abs(m.values).max()) or 1.0
        svg = heatmap(Heat(m.values, self.lab(m.rows), self.lab(m.cols), -lim, lim, tip=tip))
        cut = f" ({m.cut} smaller non-zero rows or columns left out)" if m.cut else ""
        return (f"<figure><figcaption>{esc(what)}: rows are {esc(rows)}, columns {esc(cols)}{cut}."
                f"</figcaption>{svg}</figure>")

    def head_views(self, layer: int, head: int) -> str:
        """λ, the QK view, the raw scores, the pattern and the OV view of one head, with their hooks."""
        lam = views.scale(self.t, layer, head)
        sc = self.fwd.scores[layer][head]
        pat = self.fwd.attention[layer][head]
        n = sc.shape[0]
        finite = np.where(np.isfinite(sc), sc, 0.0)
        lim = float(np.abs(finite).max()) or 1.0
        masked = np.where(np.isfinite(sc), sc, np.nan)
        score_heat = Heat(masked, self.qpos(), self.kpos(), -lim, lim,
                          numbers=n <= 16, tip="query {row} · key {col}: score {value}")
        pat_heat = Heat(pat, self.qpos(), self.kpos(), 0.0, 1.0, numbers=n <= 16,
                        tip="query {row} reads key {col} with weight {value}")
        b = f"blocks.{layer - 1}.attn"
        qk = views.qk(self.t, layer, head)
        ov = views.ov(self.t, layer, head)
        return (f"<p>Scale <b>λ = {lam:g}</b> (config <code>layers[{layer - 1}].scales[{head}]</code>; the compiler "
                "folded it into W_Q). TransformerLens: head index " + code(head) + " of "
                + hook(f"blocks.{layer - 1}") + f" ({tl_head(layer, head)}); pattern "
                + hook(f"{b}.hook_pattern[0, {head}]") + "; raw scores "
                + hook(f"{b}.hook_q[0, :, {head}] @ {b}.hook_k[0, :, {head}].T / {ATTN_SCALE:g}")
                + f" (the export doubles W_Q and TransformerLens divides by attn_scale = {ATTN_SCALE:g}).</p>"
                + self.weight_view(qk, "query dims", "key dims", "QK view: W_Q W_Kᵀ / λ",
                                   "query {row} × key {col}: {value} per unit of λ")
                + "<p class=small>The score of query position q on key position k is λ · Σ x_q[i] M[i, j] x_k[j] "
                  "over the entries M[i, j] above. The keys the selector picks share the top score and every other "
                  "key scores lower by a margin times λ, so after the softmax the picked keys hold all but a "
                  "vanishing part of the weight (hardwire certify bounds that part).</p>"
                + "<figure><figcaption>Raw scores (λ included, before the softmax; grey: a masked key, which gets "
                  "no weight).</figcaption>" + heatmap(score_heat) + "</figure>"
                + "<figure><figcaption>Attention pattern: the softmax of the scores over the keys.</figcaption>"
                + heatmap(pat_heat) + "</figure>"
                + self.weight_view(ov, "dims of the key it reads", "dims of the query it writes",
                                   "OV view: W_V W_O (what the head moves)", "reads {row} → writes {col}: {value}"))

    def neurons(self, layer: int, which: list[int], title: str = "") -> str:
        """One MLP's hidden units on this input: what each reads and writes and its ReLU activity per position."""
        if not which:
            return ""
        total = len(which)
        if total > UNITS:  # the active units first, then the rest, in order
            every = views.units(self.t, layer, self.fwd.mids[layer], which).activity
            fired = [u for u, a in zip(which, every) if (a > 1e-6).any()]
            which = sorted((fired + [u for u in which if u not in fired])[:UNITS])
        u = views.units(self.t, layer, self.fwd.mids[layer], which)
        names = [f"u{j}" for j in which]
        act = u.activity
        hi = float(act.max()) if act.size and act.max() > 0 else 1.0
        active = int((act > 1e-6).any(axis=1).sum())
        drawn = f" ({len(which)} drawn: the ones that fire first)" if total > len(which) else ""
        parts = [f"<p>{total} hidden unit{'s' * (total != 1)} (ReLU){title}{drawn}; {active} of those drawn fire "
                 "somewhere on this input. TransformerLens: " + hook(f"blocks.{layer - 1}.mlp.hook_post[0, :, u]")
                 + " is a unit's activity, " + hook(f"blocks.{layer - 1}.mlp.hook_pre") + " before the ReLU.</p>",
                 "<figure><figcaption>Activity relu(x·W_in) of each unit at each position.</figcaption>"
                 + heatmap(Heat(act, names, self.positions, 0.0, hi, numbers=len(self.positions) <= 24,
                                tip="unit {row} at position {col}: {value}")) + "</figure>"]
        if u.reads.rows:
            lim = float(np.abs(u.reads.values).max()) or 1.0
            parts.append("<figure><figcaption>What each unit reads (W_in: residual dims × units).</figcaption>"
                         + heatmap(Heat(u.reads.values, self.lab(u.reads.rows), names, -lim, lim,
                                        tip="dim {row} → unit {col}: {value}")) + "</figure>")
        if u.writes.cols:
            lim = float(np.abs(u.writes.values).max()) or 1.0
            parts.append("<figure><figcaption>What each unit writes (W_out: units × residual dims).</figcaption>"
                         + heatmap(Heat(u.writes.values, names, self.lab(u.writes.cols), -lim, lim,
                                        tip="unit {row} → dim {col}: {value}")) + "</figure>")
        return fold(f"Neurons: {total} hidden unit{'s' * (total != 1)}", "".join(parts), open_=total <= 24)

    def norm_view(self, layer: int) -> str:
        """A layer's pair LayerNorms: which dims each pair reads and writes, and what it does."""
        pairs = views.norm_pairs(self.t, layer)
        eps = self.t.config["layers"][layer - 1].get("norm_eps") or []
        rows = "".join(f"<tr><td>{p}</td><td>{esc(', '.join(self.lab(r)))}</td><td>{esc(', '.join(self.lab(w)))}"
                       f"</td><td>{eps[p] if p < len(eps) else ''}</td></tr>" for p, (r, w) in enumerate(pairs))
        return ("<p>A <b>pair LayerNorm</b> (<code>layers." + str(layer - 1) + ".norm</code>) sits beside the MLP "
                "and reads the same residual. It projects two numbers (a, b) from the residual, subtracts their "
                "mean and divides by their spread: (a, b) → ((a − b) / |a − b|, (b − a) / |a − b|) at ε = 0. So it "
                "keeps only the <b>sign</b> of a − b, exactly, however small the difference: a comparison no "
                "lookup table over a finite grid could make at every length. It is not part of the MLP; "
                "TransformerLens has no such block (hardwire export --to tl refuses it).</p>"
                "<table><tr><th>pair</th><th>reads</th><th>writes</th><th>ε</th></tr>" + rows + "</table>")

    def residual_svg(self, layer: int, x: np.ndarray, prev: np.ndarray | None, owner_of) -> tuple[str, list[int]]:
        """The residual after `layer` as a heatmap of the shown dims; returns it and the rows it changed."""
        dims = self.shown
        changed = [k for k, d in enumerate(dims) if prev is None or np.abs(x[:, d] - prev[:, d]).max() > 1e-6]
        groups = tuple(k for k in range(1, len(dims)) if owner_of(dims[k]) != owner_of(dims[k - 1]))
        labels = self.lab(dims)
        flags = tuple(any(f in lab for f in FLAG) for lab in labels)
        heat = Heat(x[:, dims].T, labels, self.positions, -1.0, 1.0, frozenset(changed if prev is not None else []),
                    groups, flags=flags, tip="{row} at position {col}: {value}")
        return heatmap(heat), changed

    def resid_hook(self, layer: int) -> str:
        if layer == 0:
            return ("TransformerLens: " + hook("blocks.0.hook_resid_pre") + " (= " + hook("hook_embed") + " + "
                    + hook("hook_pos_embed") + ").")
        return ("TransformerLens: " + hook(f"blocks.{layer - 1}.hook_resid_post") + "; after the heads, before "
                "the MLP: " + hook(f"blocks.{layer - 1}.hook_resid_mid") + ".")
