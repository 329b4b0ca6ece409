"""The layer-by-layer section of the `hardwire explain` page for a program: after the embedding and after every
layer, each head (selector, λ, QK view, scores, pattern, OV view, what each query read), each MLP block (its
formula, its lookup table beside its neurons) and each pair LayerNorm, on one input.

A mixin of html.Page, which provides the walk (`w`), the source lines, the dimension owners and the names.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from hardwire.compiler.core.sops import SCALAR, WORD, Mux, Norm, Width
from hardwire.compiler.lower import ATTN, MLP, inputs_of
from hardwire.explain import views
from hardwire.explain.markup import code, esc, fold, table
from hardwire.explain.render import tl_head
from hardwire.explain.text import lookup_rows, selector, show, source_line, table_inputs
from hardwire.explain.walk import BLANK, Placed, Walk

FOLD_ROWS = 12  # a per-position table longer than this is folded


def combo_index(combo: tuple, spec: list[tuple[str, tuple]]) -> int:
    """A combination's row number in the full table (itertools.product order)."""
    i = 0
    for x, (_, vals) in zip(combo, spec):
        i = i * len(vals) + vals.index(x)
    return i


def with_gaps(rows: list[tuple[tuple, object]], spec: list[tuple[str, tuple]], total: int) -> list:
    """The shown rows in table order, with a (None, n) marker wherever n rows of the full table are skipped."""
    ordered = sorted(((combo_index(c, spec), c, o) for c, o in rows), key=lambda r: r[0])
    out, nxt = [], 0
    for i, c, o in ordered:
        if i > nxt:
            out.append((None, i - nxt))
        out.append((c, o))
        nxt = i + 1
    if total > nxt:
        out.append((None, total - nxt))
    return out


class Layers:
    """Section 4 of the page: the walk through the layers."""
    w: Walk
    lines: list[str]
    owner: dict[int, tuple]  # dim -> (the value's key, its name)
    shown: list[int]         # the dims the heatmaps show

    def walk(self) -> str:
        w = self.w
        out = ['<h2 id="walk">4. Layer by layer</h2>'
               "<p>The input goes in as the BOS token at position 0 followed by its tokens: position <i>p</i> ≥ 1 "
               "holds the token at index <i>p</i> − 1 (the language's <code>indices</code> count from 0 at the first "
               "token). Each layer adds to the residual stream (only a loop's last MLP rewrites: the registers, and "
               "it erases the pass's temporaries). Hover a cell of any figure for its row, column and value.</p>"]
        if w.kind == "looped":
            out.append(f'<p class="note">Below: the first pass of the loop body (layers 1–{w.body_layers}) on the '
                       'input as loaded into the registers; <a href="#steps">section 5</a> steps through the passes.'
                       "</p>")
        elif w.kind == "generating":
            out.append('<p class="note">Below: the forward pass over the prompt; <a href="#steps">section 5</a> '
                       "steps through the generated tokens.</p>")
        out.append('<h3 id="layer-0">The embedding</h3>' + self.residual(0))
        for layer in range(1, w.n_layers + 1):
            tag = " (loop body)" if w.kind == "looped" and layer <= w.body_layers else ""
            out.append(f'<h3 id="layer-{layer}">Layer {layer}{tag} <span class=small>(TransformerLens '
                       f"<code>blocks.{layer - 1}</code>)</span></h3>")
            heads, mlps = self.blocks(layer, ATTN), self.blocks(layer, MLP)
            before = "the embedding" if layer == 1 else f"layer {layer - 1}"
            n_h, n_m = len(heads), len(mlps)
            what = [f"{n_h} head{'s' * (n_h != 1)}"] * bool(n_h) + [f"{n_m} MLP block{'s' * (n_m != 1)}"] * bool(n_m)
            how = ("Its heads read the residual stream after " + before + " and add what they copy" if n_h else
                   "It has no heads") + ("; then its MLP blocks read the result and add theirs." if n_m else ".")
            out.append(f"<p>{' and '.join(what) or 'Nothing'}. {how}</p>")
            out += [self.head(p) for p in heads]
            owners = self.unit_blocks(layer, mlps)
            out += [self.mlp(p, k, owners.get(k, [])) for k, p in enumerate(mlps, 1)]
            rest = owners.get(0, [])
            if rest:
                out.append(self.neurons(layer, rest, " that write no value of this layer (they erase the pass's "
                                                      "temporaries)"))
            out.append(f"<h4>After layer {layer}</h4>" + self.residual(layer))
        return "".join(out)

    def block_id(self, p: Placed) -> str:
        """The page's anchor for a block: head-L-h, mlp-L-k."""
        if p.block.kind == ATTN:
            return f"head-{p.layer}-{p.head + 1}"
        if p.block.kind == MLP:
            return f"mlp-{p.layer}-{self.blocks(p.layer, MLP).index(p) + 1}"
        return "layer-0"

    def block_name(self, p: Placed) -> str:
        if p.block.kind == ATTN:
            return f"head {p.layer}.{p.head + 1}"
        if p.block.kind == MLP:
            k = self.blocks(p.layer, MLP).index(p) + 1
            return f"{'LayerNorm' if isinstance(p.block.sop, Norm) else 'MLP'} {p.layer}.{k}"
        return "embedding"

    def out_dims(self, p: Placed) -> set[int]:
        s = p.block.sop
        out_s = s.target if isinstance(s, Mux) and s.target is not None else s
        return set(self.w.layout.dims.get((id(out_s), ""), []))

    def unit_blocks(self, layer: int, mlps: list[Placed]) -> dict[int, list[int]]:
        """The hidden units of the layer's MLP by block (1-based; 0: units that write no block's value)."""
        first = views.unit_owner(self.w.t, layer)
        if first is None:
            return {}
        by_dim = {}
        for k, p in enumerate(mlps, 1):
            for d in self.out_dims(p):
                by_dim.setdefault(d, k)
        out: dict[int, list[int]] = {}
        w_out = views.weight(self.w.t, f"layers.{layer - 1}.mlp.W_out")
        for u in range(len(first)):
            if first[u] < 0:
                continue
            written = np.flatnonzero(np.abs(w_out[u]) > views.TINY)
            k = next((by_dim[int(d)] for d in written if int(d) in by_dim), 0)
            out.setdefault(k, []).append(u)
        return out

    def residual(self, layer: int) -> str:
        w = self.w
        prev = w.after[layer - 1] if layer else None
        svg, changed = self.residual_svg(layer, w.after[layer], prev, lambda d: self.owner.get(d, (d,))[0])
        dims = self.shown
        note = "" if len(dims) == len(w.compiled.labels) else (
            f" Only the {len(dims)} of {len(w.compiled.labels)} dimensions that are non-zero somewhere in this walk "
            "are shown; the rest stay 0 at every position after every layer.")
        new = sorted({self.labels[dims[k]].split("=")[0].rsplit(".b", 1)[0] for k in changed}, key=str)
        start = " and the registers' starting values" if w.kind == "looped" else ""
        what = (f"The embedding writes each position's token and position features{start}." if layer == 0 else
                "Labels in red are the dimensions this layer changed: " + ", ".join(code(n) for n in new) + "."
                if new else "This layer changed nothing at these positions.")
        return (f"<p>{what} Rows are dimensions (by label), columns are positions (by token); a flag, a bit or a "
                f"one-hot dimension is dark red at 1, every other non-zero value is written in its cell.{note} "
                f"{self.resid_hook(layer)}</p><figure>{svg}</figure>")

    def head(self, p: Placed) -> str:
        w, s, L, h = self.w, p.block.sop, p.layer, p.head
        pattern = w.attention[L][h]
        sel = selector(s.selector)
        name = self.name(s)
        if isinstance(s, Width):
            does = (f"Each query attends equally to BOS and to every key the selector picks, so the value it reads "
                    f"from BOS's flag is 1/(w+1) for w picked keys: that is {code(name + '.frac')}, which an MLP "
                    f"of this layer turns into the count {code(name)}.")
            part = ".frac"
        else:
            agg = {"latest": "the last", "earliest": "the first"}.get(s.pick)
            val = self.name(s.value)
            if agg:
                does = f"Each query copies {code(val)} from {agg} key it selects into {code(name)}."
            elif s.encoding == SCALAR:
                does = (f"Each query takes the mean of {code(val)} over the keys it selects (0 when it "
                        f"selects none) into {code(name)}.")
            else:
                empty = "0" if s.encoding == WORD else "none"
                does = (f"Each query attends to the one key it selects and copies its {code(val)} into "
                        f"{code(name)}; a query that selects nothing attends to BOS and gets {empty}.")
            part = ""
        rows = []
        for q in range(1, len(w.positions)):
            keys = [str(k) for k in np.flatnonzero(pattern[q] > 0.01)]
            rows.append([str(q), esc(w.tokens[q - 1]), esc(", ".join(keys)),
                         code(show(w.decode(s, w.mids[L][q], part)))])
        line = source_line(self.lines, s)
        reads = table(["query", "token", "attends to keys", f"writes {esc(name + part)}"], rows)
        return (f'<h4 id="head-{L}-{h + 1}"><span class="kind k-attn">head {L}.{h + 1}</span> '
                f"{esc(name)}: <code>{esc(sel)}</code> <span class=small>({tl_head(L, h)})</span></h4>"
                f"<p>Selector: {code(sel)}. {self.how_qk(s)} {does}"
                + (f" Source line {s.line}: {code(line)}." if line else "") + "</p>"
                + self.head_views(L, h)
                + (fold(f"What each of the {len(rows)} queries read", reads) if len(rows) > FOLD_ROWS else reads))

    def how_qk(self, s) -> str:
        """How the selector's comparison becomes a dot product of a query and a key."""
        preds = set()
        stack = [s.selector]
        combined = False
        while stack:
            sel = stack.pop()
            if getattr(sel, "origin", None) is not None:  # one select standing for a `|` across keys (combine.py)
                combined = True
                continue
            if hasattr(sel, "pred"):
                preds.add((sel.pred, getattr(sel.keys, "encoding", ""), getattr(sel.queries, "encoding", ""),
                           sel.fn is not None))
            stack += [getattr(sel, n) for n in ("inner", "left", "right") if hasattr(sel, n)]
        said = []
        for pred, ek, eq, custom in sorted(preds):
            if custom:
                said.append(f"<code>{esc(pred)}</code> is spelled out as its truth table: key values whose rows are "
                            "equal share one column that reads their dims, and the query sums the dims of every query "
                            "value the row holds for (or the same with keys and queries swapped, if fewer), so the "
                            "product is 1 exactly where it holds")
            elif WORD in (ek, eq):
                said.append(f"<code>{esc(pred)}</code> on words compares bit by bit: each bit pair adds to the "
                            "score when the bits agree, so only the key whose word matches reaches the top score")
            else:
                same = " (for <code>==</code> on two one-hot values, the identity)" if pred == "==" else ""
                said.append(f"<code>{esc(pred)}</code> is spelled out value by value: for each key value the key "
                            "reads its own dim, and the query sums the dims of every query value the comparison "
                            f"holds for, so the product is 1 exactly where it holds{same}")
        text = selector(s.selector)
        if combined:
            said.append("its <code>|</code> across different keys or queries is one select whose key is its keys as "
                        "one tuple value and whose query is its queries as another, spelled out as the truth table of "
                        "the whole <code>|</code> over (key tuple, query tuple) pairs")
        elif "|" in text or "!" in text:
            said.append("with <code>|</code> or <code>!</code> the whole selector is one such lookup over (key "
                        "value, query value) pairs")
        elif "&" in text:
            said.append("the terms of <code>&amp;</code> add up, and the head picks the keys where all of them "
                        "hold (BOS sits just below)")
        return ("How it scores: " + "; ".join(said) + ".") if said else ""

    def lookup(self, s, spec, hits: set) -> str:
        rows, left = lookup_rows(s, hits)
        total = len(rows) + max(left, 0)
        cells, classes = [], []
        for combo, out in with_gaps(rows, spec, total):
            if combo is None:
                cells.append([f"… {out:,} more row{'s' * (out != 1)}"] + [""] * len(spec))
                classes.append("gap")
                continue
            cells.append([code(show(v)) for v in combo] + [code(show(out))])
            classes.append("hit" if combo in hits else "")
        head = [esc(n) for n, _ in spec] + [esc(self.name(s.target if isinstance(s, Mux) and s.target else s))]
        body = table(head, cells, classes)
        text = (f"An exact lookup table over its inputs' value sets: one row per combination ({total:,} in all); "
                "highlighted rows are the ones this input used.")
        return f"<p>{text}</p>" + (fold(f"Lookup table ({len(cells)} rows shown)", body) if len(cells) > 24 else body)

    def mlp(self, p: Placed, k: int, units: list[int]) -> str:
        w, s, L = self.w, p.block.sop, p.layer
        says = self.say(s)
        line = source_line(self.lines, s)
        ins = [(s, ".frac")] if isinstance(s, Width) else [(i, "") for i in inputs_of(s)]
        out_s = s.target if isinstance(s, Mux) and s.target is not None else s
        per_pos, hits = [], set()
        for q in range(1, len(w.positions)):
            vals = [w.decode(i, w.mids[L][q], part) for i, part in ins]
            out = w.decode(out_s, w.after[L][q])
            per_pos.append([str(q), esc(w.tokens[q - 1])] + [code(show(v)) for v in vals] + [code(show(out))])
            if isinstance(s, Width) and out != BLANK:
                hits.add((Fraction(1, out + 1),))
            else:
                hits.add(tuple(vals))
        heads = [esc(f"{self.name(i)}{part}") for i, part in ins]
        title = self.block_name(p)
        kind = "norm" if isinstance(s, Norm) else "mlp"
        parts = [f'<h4 id="mlp-{L}-{k}"><span class="kind k-{kind}">{title}</span> '
                 f'<code>{esc(says.split("   (")[0])}</code></h4>']
        if line:
            parts.append(f"<p class=small>From source line {s.line}: {code(line)}</p>")
        spec = table_inputs(s)
        if isinstance(s, Norm):
            parts.append(self.norm_view(L))
            spec = None
        elif isinstance(s, Mux) and s.target is not None:
            parts.append(f"<p>A loop <b>commit</b>: at the end of the pass it rewrites register "
                         f"{code(self.name(s.target))} with the case whose guard holds, copying bits with unit steps "
                         "so they snap back to exactly 0 or 1. The same MLP erases every temporary this pass wrote, "
                         "so the next pass starts clean. Its inputs are words, so no table is listed.</p>")
        elif spec is None:
            parts.append(f"<p>This MLP works on the bits of {w.fused.word_bits}-bit words (2<sup>{w.fused.word_bits}"
                         "</sup> values each), so its table is not listed; the line above is what it computes, and "
                         "its neurons below are how.</p>")
        table_html = self.lookup(s, spec, hits) if spec is not None else ""
        neurons = self.neurons(L, units) if units else ""
        if table_html and neurons:
            parts.append(f'<div class="side"><div>{table_html}</div><div>{neurons}</div></div>')
        else:
            parts.append(table_html + neurons)
        per = table(["position", "token"] + heads + [f"→ {esc(self.name(out_s))}"], per_pos)
        parts.append("<p>What it computed at each position (inputs as it read them, output as it wrote it):</p>"
                     + (fold(f"{len(per_pos)} positions", per) if len(per_pos) > FOLD_ROWS else per))
        return "".join(parts)
