"""The layer-by-layer sections of the `hardwire explain` page: the residual stream after the embedding and
after every layer, each head's attention pattern and each MLP's lookups, on one input.

A mixin of explain_html.Page, which provides the walk (`w`), the source lines, the dimension owners and the
figure helpers.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from hardwire.compiler.core.sops import SCALAR, WORD, Mux, Width
from hardwire.compiler.lower import ATTN, MLP, inputs_of
from hardwire.explain import draw
from hardwire.explain.markup import code, esc, table
from hardwire.explain.text import TABLE_ROWS, lookup_rows, ref, selector, show, source_line, table_inputs
from hardwire.explain.walk import BLANK, Placed, Walk


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
               "it erases the pass's temporaries). "
               "Below, every head shows its attention pattern and every MLP its lookups, each followed by the "
               "residual stream after its layer.</p>"]
        if w.kind == "looped":
            out.append(f'<p class="note">One pass of the loop body: layers 1–{w.body_layers}, on the input as '
                       "loaded into the registers. The runtime repeats these layers until the halt test holds.</p>")
        elif w.kind == "generating":
            out.append('<p class="note">The forward pass over the prompt; generation repeats it with each new '
                       "token appended.</p>")
        out.append("<h3>The embedding</h3>" + self.residual(0))
        for layer in range(1, w.n_layers + 1):
            tag = " (loop body)" if w.kind == "looped" and layer <= w.body_layers else ""
            out.append(f'<h3 id="layer-{layer}">Layer {layer}{tag}</h3>')
            heads, mlps = self.blocks(layer, ATTN), self.blocks(layer, MLP)
            before = "the embedding" if layer == 1 else f"layer {layer - 1}"
            n_h, n_m = len(heads), len(mlps)
            what = [f"{n_h} head{'s' * (n_h != 1)}"] * bool(n_h) + [f"{n_m} MLP block{'s' * (n_m != 1)}"] * bool(n_m)
            how = ("Its heads read the residual stream after " + before + " and add what they copy" if n_h else
                   "It has no heads") + ("; then its MLP reads the result and adds its lookups." if n_m else ".")
            out.append(f"<p>{' and '.join(what) or 'Nothing'}. {how}</p>")
            out += [self.head(p) for p in heads] + [self.mlp(p) for p in mlps]
            out.append(f"<h4>After layer {layer}</h4>" + self.residual(layer))
        return "".join(out)

    def residual(self, layer: int) -> str:
        w = self.w
        dims = self.shown
        values = w.after[layer][:, dims]
        prev = w.after[layer - 1] if layer else np.zeros_like(w.after[0])
        changed = {k for k, d in enumerate(dims) if np.abs(w.after[layer][:, d] - prev[:, d]).max() > 1e-6}
        groups = [k for k in range(1, len(dims)) if self.owner[dims[k]][0] != self.owner[dims[k - 1]][0]]
        title = "residual stream after the embedding" if layer == 0 else \
            f"residual stream after layer {layer} of {w.n_layers}"
        name = f"residual_{layer}.png"
        draw.residual(self.png(name), values, [w.compiled.labels[d] for d in dims], w.positions, changed, groups,
                      title)
        note = "" if len(dims) == len(w.compiled.labels) else (
            f" Only the {len(dims)} of {len(w.compiled.labels)} dimensions that are non-zero somewhere in this walk "
            "are shown; the rest stay 0 at every position after every layer.")
        new = sorted({self.owner[dims[k]][1] for k in changed}, key=str)
        start = " and the registers' starting values" if w.kind == "looped" else ""
        what = (f"The embedding writes each position's token and position features{start}." if layer == 0 else
                "Labels in red are the dimensions this layer changed: " + ", ".join(code(n) for n in new) + "."
                if new else "This layer changed nothing at these positions.")
        return (f"<p>{what} Rows are dimensions (by label), columns are positions (by token). Dark red is 1 in "
                "a one-hot dimension, a bit or a BOS flag; every other non-zero value is written in its cell."
                f"{note}</p>" + self.img(name, title))

    def head(self, p: Placed) -> str:
        w, s, L, h = self.w, p.block.sop, p.layer, p.head
        pattern = w.attention[L][h]
        sel = selector(s.selector)
        name = f"head_{L}_{h + 1}.png"
        draw.attention(self.png(name), pattern, w.positions, f"head {L}.{h + 1}: {sel}")
        if isinstance(s, Width):
            does = (f"Each query attends equally to BOS and to every key the selector picks, so the value it reads "
                    f"from BOS's flag is 1/(w+1) for w picked keys: that is {code(s.label + '.frac')}, which an MLP "
                    f"of this layer turns into the count {code(s.label)}.")
            part = ".frac"
        else:
            agg = {"latest": "the last", "earliest": "the first"}.get(s.pick)
            if agg:
                does = f"Each query copies {code(ref(s.value))} from {agg} key it selects into {code(s.label)}."
            elif s.encoding == SCALAR:
                does = (f"Each query takes the mean of {code(ref(s.value))} over the keys it selects (0 when it "
                        f"selects none) into {code(s.label)}.")
            else:
                empty = "0" if s.encoding == WORD else "none"
                does = (f"Each query attends to the one key it selects and copies its {code(ref(s.value))} into "
                        f"{code(s.label)}; a query that selects nothing attends to BOS and gets {empty}.")
            part = ""
        rows = []
        for q in range(1, len(w.positions)):
            keys = [str(k) for k in np.flatnonzero(pattern[q] > 0.01)]
            rows.append([str(q), esc(w.tokens[q - 1]), esc(", ".join(keys)), code(show(w.decode(s, w.mids[L][q],
                                                                                              part)))])
        line = source_line(self.lines, s)
        return (f'<h4 id="head-{L}-{h + 1}"><span class="kind k-attn">head {L}.{h + 1}</span> '
                f"{esc(s.label)}: <code>{esc(sel)}</code></h4>"
                f"<p>Selector: {code(sel)}. {does}"
                + (f" Source line {s.line}: {code(line)}." if line else "") + "</p>"
                + self.img(name, f"attention of head {L}.{h + 1}")
                + table(["query", "token", "attends to keys", f"writes {esc(s.label + part)}"], rows))

    def mlp(self, p: Placed) -> str:
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
        heads = [esc(f"{i.label}{part}" if part else ref(i)) for i, part in ins]
        parts = [f'<h4><span class="kind k-mlp">MLP {L}</span> <code>{esc(says.split("   (")[0])}</code></h4>']
        if line:
            parts.append(f"<p class=small>From source line {s.line}: {code(line)}</p>")
        spec = table_inputs(s)
        if isinstance(s, Mux) and s.target is not None:
            parts.append(f"<p>A loop <b>commit</b>: at the end of the pass it rewrites register "
                         f"{code(s.target.label)} with the case whose guard holds, copying bits with unit steps so "
                         "they snap back to exactly 0 or 1. The same MLP erases every temporary this pass wrote, so "
                         "the next pass starts clean. Its inputs are words, so no table is listed.</p>")
        elif spec is None:
            parts.append(f"<p>This MLP works on the bits of {w.fused.word_bits}-bit words (2<sup>{w.fused.word_bits}"
                         "</sup> values each), so its table is not listed; the line above is what it computes.</p>")
        else:
            rows, left = lookup_rows(s, hits)
            cells = [[code(show(v)) for v in combo] + [code(show(out))] for combo, out in rows]
            classes = ["hit" if combo in hits else "" for combo, _ in rows]
            if left > 0:
                cells.insert(min(TABLE_ROWS, len(cells)), [f"… {left:,} more rows"] + [""] * len(spec))
                classes.insert(min(TABLE_ROWS, len(classes)), "")
            parts.append(f"<p>An exact lookup table over its inputs' value sets: one row per combination "
                         f"({len(rows) + max(left, 0):,} in all); highlighted rows are the ones this input used.</p>"
                         + table([esc(n) for n, _ in spec] + [esc(out_s.label)], cells, classes))
        parts.append("<p>What it computed at each position (inputs as the MLP read them, output as it wrote it):</p>"
                     + table(["position", "token"] + heads + [f"→ {esc(out_s.label)}"], per_pos))
        return "".join(parts)
