"""The page of `hardwire explain` for a program: one self-contained HTML file (inline CSS, SVG and script).

Sections: the program (each line linked to its blocks) and its size; the circuit by layer; the residual layout;
the walk through the layers (the embedding, then each layer's heads, MLPs and residual stream); a step control
through a loop's passes or a generation's tokens; the outputs next to the interpreter's.
"""
from __future__ import annotations

import os

import numpy as np

from hardwire.compiler.core.sops import Mux, Norm, Register, Width, is_flag
from hardwire.compiler.lower import ATTN, EMBED, MLP
from hardwire.explain.layers import Layers
from hardwire.explain.markup import code, document, esc, fold, table
from hardwire.explain.names import dim_labels, value_name
from hardwire.explain.render import Render
from hardwire.explain.steps import Steps
from hardwire.explain.svg import Box, diagram
from hardwire.explain.text import NAME, definition, formula, selector, show, source_line
from hardwire.explain.trace import stop_reason
from hardwire.explain.walk import Placed, Walk

WIDE = 40  # a residual wider than this shows only the dimensions that are non-zero somewhere


SOURCE_LINES = 40  # a longer program listing is folded


class Page(Layers, Render, Steps):
    """Builds the page's HTML for one Walk (section 4 comes from Layers, the weight views from Render, the step
    controls from Steps)."""

    def __init__(self, w: Walk):
        self.w, self.t, self.fwd = w, w.t, w.fwd
        self.lines = w.source.splitlines()
        self.owner = self.owners()
        self.shown = self.shown_dims()
        self.positions = w.positions
        by_id = {id(p.block.sop): p.block.sop for p in w.placed}
        sops = {key: by_id[key[0]] for key, _ in self.owner.values() if isinstance(key, tuple) and key[0] in by_id}
        self.labels = dim_labels(w.compiled.labels, self.owner, sops, w.fused)

    # ---- helpers -------------------------------------------------------------------------------
    def stepped(self) -> tuple[str, list, list, list]:
        return self.w.kind, self.w.passes, self.w.gen, self.w.tokens

    def name(self, s) -> str:
        """The program's name for a value, or its expression."""
        return value_name(s, self.w.fused)

    def owners(self) -> dict[int, tuple]:
        """Every residual dimension's feature: (a key for the value it belongs to, its name: `ones`, `ones.frac`)."""
        own: dict[int, tuple] = {0: ("bos", "BOS flags"), 1: ("bos", "BOS flags")}
        if self.w.layout.index is not None:
            own[self.w.layout.index] = ("index", "index")
        by_id = {id(p.block.sop): p.block.sop for p in self.w.placed}
        for (sid, part), dims in self.w.layout.dims.items():
            s = by_id.get(sid)
            for d in dims:
                own[d] = ((sid, part), (value_name(s, self.w.fused) if s is not None else "?") + part)
        return own

    def writers(self) -> dict:
        """Which block writes each value (by owner key): `embedding`, `head 1.1`, `MLP 2`; registers are also
        rewritten by the loop's last MLP."""
        out: dict = {"bos": "embedding", "index": "embedding"}
        for p in self.w.placed:
            s, kind = p.block.sop, p.block.kind
            if isinstance(s, Mux) and s.target is not None:
                key = (id(s.target), "")
                out[key] = f"{out.get(key, 'embedding')}; rewritten by {self.block_name(p)}"
                continue
            key = (id(s), ".frac" if kind == ATTN and isinstance(s, Width) else "")
            out.setdefault(key, self.block_name(p))
        return out

    def shown_dims(self) -> list[int]:
        w = self.w
        d = len(w.compiled.labels)
        if d <= WIDE:
            return list(range(d))
        stack = np.stack(w.after + list(w.mids.values()))
        return [int(i) for i in np.flatnonzero(np.abs(stack).max(axis=(0, 1)) > 1e-6)]

    def blocks(self, layer: int, kind: str) -> list[Placed]:
        return [p for p in self.w.placed if p.layer == layer and p.block.kind == kind]

    def say(self, s) -> str:
        text = formula(self.w.fused, s, "mlp" if not isinstance(s, Register) else "embed", self.lines)
        if isinstance(s, Mux) and s.target is not None and text.startswith(s.target.label + " := "):
            return self.name(s.target) + text[len(s.target.label):]
        name = self.name(s)
        if s.label != name and text.startswith(s.label + " = "):
            rest = text[len(s.label) + 3:]
            text = rest if rest.split("   (")[0] == name else f"{name} = {rest}"
        return text

    # ---- sections ------------------------------------------------------------------------------
    def header(self) -> str:
        w = self.w
        s = w.compiled.summary()
        params = ", ".join(f"{k} = {v}" for k, v in w.params.items())
        kind = {
            "plain": "It runs once over the input: the outputs are read off the last layer's residual stream.",
            "looped": (f"It is a <b>looped</b> program: layers 1–{w.body_layers} are the loop body, which the runtime "
                       "applies again and again until the halt test holds. Section 4 shows the first pass of the "
                       "loop body in full, on the input as loaded into the registers; section 5 steps through the "
                       "passes, with the registers after each; section 6 gives the answer after the whole run."),
            "generating": ("It is a <b>generating</b> program: the runtime appends the next token and runs again. "
                           "Section 4 shows the forward pass over the prompt in full (the next token is "
                           f"{code(w.fused.generate)} at the last position); section 5 steps through the generated "
                           "tokens, with what each head read."),
        }[w.kind]
        norms = any(isinstance(p.block.sop, Norm) for p in w.placed)
        lead = (f"<p>{code(s['program'])} compiles to a transformer with <b>{s['layers']} layer"
                f"{'s' * (s['layers'] != 1)}</b> and <b>{s['heads']} attention head{'s' * (s['heads'] != 1)}</b> in "
                f"all. Its residual stream has <b>d_model = {s['d_model']}</b> dimensions, each with a label; its "
                f"widest MLP has <b>d_mlp = {s['d_mlp']}</b> hidden units and its heads d_head = {s['d_head']}. "
                f"That is <b>{s['params']:,} parameters</b>, of which {s['nonzero_params']:,} are non-zero. "
                "Every head is a hard attention head (it attends to the keys its selector picks, and to the BOS "
                "token at position 0 when it picks none), and every MLP block is an exact lookup table"
                + (" or a unit-step copy of bits" if w.fused.word_bits else "")
                + ("; a <b>pair LayerNorm</b> beside an MLP keeps the sign of a difference exactly" if norms else "")
                + ". " + kind + "</p>")
        return (f"<h1>{esc(s['program'])}: one input through the compiled transformer</h1>"
                f"<p class=small>Program {code(os.path.basename(w.file))}{', params ' + esc(params) if params else ''}"
                f" · input {code(' '.join(str(t) for t in w.tokens))} ({len(w.tokens)} tokens; position 0 is BOS)"
                "</p>" + self.contents() + f'<h2 id="program">1. The program</h2>{lead}' + self.listing())

    def listing(self) -> str:
        """The source, each line linked to the blocks it became; folded when long (a generated program)."""
        links: dict[int, list[str]] = {}
        for p in self.w.placed:
            if p.block.kind != EMBED and 0 < p.block.sop.line <= len(self.lines):
                tag = f'<a href="#{self.block_id(p)}">{esc(self.block_name(p))}</a>'
                if tag not in links.setdefault(p.block.sop.line, []):
                    links[p.block.sop.line].append(tag)
        src = "\n".join(f'<span class="ln" id="line-{i}">{i:>3}  </span>{esc(line)}'
                        + (f'<span class="links">{"".join(links[i])}</span>' if i in links else "")
                        for i, line in enumerate(self.lines, 1))
        pre = f"<pre>{src}</pre>"
        if len(self.lines) > SOURCE_LINES:
            return fold(f"The program's source: {len(self.lines)} lines (generated); each line links to its "
                        "blocks", pre)
        return pre

    def contents(self) -> str:
        items = [("program", "The program"), ("blocks", "The circuit, layer by layer"),
                 ("layout", "The residual stream's layout"), ("walk", "Layer by layer"), ("steps", "Step by step"),
                 ("outputs", "The outputs")]
        return "<nav><ol>" + "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in items) + "</ol></nav>"

    def graph(self) -> str:
        w = self.w
        bands, rows = [], []
        segments = sorted({p.segment for p in w.placed})
        shown_embeds: set[int] = set()
        for seg in segments:
            mine = [p for p in w.placed if p.segment == seg]
            if seg > 0 and all(p.block.kind == EMBED for p in mine):
                continue
            embeds = [p for p in mine if p.block.kind == EMBED]
            title = "registers, inputs" if w.kind == "looped" and seg == 0 else "after the loop" if seg else ""
            if embeds:
                bands.append((title or "embedding", [self.node(p) for p in embeds]))
            for layer in sorted({p.layer for p in mine if p.layer}):
                for kind, name in ((ATTN, "heads"), (MLP, "MLP")):
                    ps = [p for p in mine if p.layer == layer and p.block.kind == kind]
                    if ps:
                        bands.append((f"layer {layer} {name}", [self.node(p) for p in ps]))
            for p in mine:
                if p.block.kind == EMBED and id(p.block.sop) in shown_embeds:
                    continue
                shown_embeds.add(id(p.block.sop))
                b = p.block
                where = "embedding" if b.kind == EMBED else f"layer {p.layer}"
                box = self.node(p)
                line = source_line(self.lines, b.sop)
                kind = "norm" if isinstance(b.sop, Norm) else b.kind
                rows.append([esc(where), f'<span class="kind k-{kind}">{esc(self.block_name(p))}</span>',
                             code(self.name(b.sop.target if isinstance(b.sop, Mux) and b.sop.target else b.sop)),
                             code(box.text), f'<a href="#line-{b.sop.line}">{b.sop.line}</a>: {code(line)}'
                             if line else ""])
        edges = [(self.key(a), self.key(b)) for a, b in self.graph_edges()]
        listing = table(["where", "block", "value", "computes", "source line"], rows)
        return ('<h2 id="blocks">2. The circuit, layer by layer</h2>'
                "<p>The compiler turns every value the program needs into a <b>block</b>: an embedding feature "
                "(a function of the token alone or of the position alone, folded into the embedding tables), an "
                "attention <b>head</b> (every <code>aggregate</code> and <code>width</code>), or an <b>MLP</b> block "
                "(every other elementwise computation, as a lookup table). Each block goes into the earliest layer "
                "whose inputs are ready: a head needs its inputs from an earlier layer, an MLP can read the heads of "
                "its own layer. Each band below is one sublayer, top to bottom; arrows are data dependencies; grey "
                "boxes are embedding features, blue boxes heads, orange boxes MLP blocks, violet boxes pair "
                "LayerNorms. Click a box for its section.</p>"
                + diagram(bands, edges) + (fold(f"Every block ({len(rows)}) as a table", listing)
                                           if len(rows) > 24 else listing))

    def key(self, p: Placed) -> str:
        return f"{p.segment}:{p.block.kind}:{id(p.block.sop)}"

    def graph_edges(self) -> list[tuple[Placed, Placed]]:
        """The data dependencies between placed blocks, segment by segment (lowered again: same SOps, same edges)."""
        from hardwire.compiler.lower import lower
        w = self.w
        by_sop = {(p.segment, id(p.block.sop), p.block.kind): p for p in w.placed}
        roots = [list(w.fused.loop.commits)] if w.fused.loop is not None else []
        edges = []
        for seg, r in enumerate(roots + [None]):
            for a, b in lower(w.fused, r).edges:
                pa, pb = by_sop.get((seg, id(a.sop), a.kind)), by_sop.get((seg, id(b.sop), b.kind))
                if pa is not None and pb is not None:
                    edges.append((pa, pb))
        return edges

    def node(self, p: Placed) -> Box:
        """The block's box in the circuit diagram: what it is and what it computes."""
        s, kind = p.block.sop, p.block.kind
        key, anchor = self.key(p), self.block_id(p)
        if kind == EMBED:
            if isinstance(s, Register):
                return Box(key, kind, f"{self.name(s)} (register)", "its value at the start of the pass", anchor)
            text = definition(s)[0]
            if not NAME.match(s.label):
                return Box(key, kind, "embedded", text, anchor)
            return Box(key, kind, f"{self.name(s)} (embedded)", "" if text == s.label else text, anchor)
        name = self.block_name(p)
        if kind == ATTN:
            if isinstance(s, Width):
                return Box(key, kind, f"{name} → {self.name(s)}.frac", definition(s)[0], anchor)
            return Box(key, kind, f"{name} → {self.name(s)}", f"{selector(s.selector)} → {self.name(s.value)}", anchor)
        text = self.say(s)
        if isinstance(s, Norm):
            return Box(key, "norm", f"{name} → {self.name(s)}", text.split(" = ", 1)[-1], anchor)
        if isinstance(s, Mux) and s.target is not None:
            return Box(key, kind, f"{name} → {self.name(s.target)} (commit)", text.split("   (")[0], anchor)
        return Box(key, kind, f"{name} → {self.name(s)}", text.split(" = ", 1)[-1].split("   (")[0], anchor)

    def layout_table(self) -> str:
        w = self.w
        groups: dict = {}
        for d in range(len(w.compiled.labels)):
            key, name = self.owner.get(d, (d, "?"))
            groups.setdefault(key, (name, []))[1].append(d)
        writers = self.writers()
        meaning = {"bos": "1 at BOS (position 0); not_bos is 1 everywhere else", "index": "the position, as a number"}
        for p in w.placed:
            s = p.block.sop
            if not (isinstance(s, Mux) and s.target is not None):
                key = (id(s), ".frac" if p.block.kind == ATTN and isinstance(s, Width) else "")
                meaning.setdefault(key, "1/(w+1), w = " + definition(s)[0] if key[1] else self.node(p).text)
        rows = []
        for key, (name, dims) in groups.items():
            labels = [w.compiled.labels[d] for d in dims]
            sop = w.layout.sops.get(key) if isinstance(key, tuple) else None
            enc = ("flags" if key == "bos" else "code (its value's index)" if getattr(sop, "encoding", "") == "code"
                   else "flag (1 for true)" if sop is not None and is_flag(sop)
                   else "scalar" if len(dims) == 1 and "=" not in labels[0]
                   else "word (bits, lowest first)" if labels[0].endswith(".b0") else "one-hot")
            span = f"{dims[0]}" if len(dims) == 1 else f"{dims[0]}–{dims[-1]}"
            labels = [self.labels[d] for d in dims]
            shown = ", ".join(labels) if len(labels) <= 12 else ", ".join(labels[:6]) + ", …, " + labels[-1]
            rows.append([code(name), code(meaning.get(key, "")), esc(writers.get(key, "")), esc(enc), span,
                         esc(shown)])
        return ('<h2 id="layout">3. The residual stream\'s layout</h2>'
                f"<p>The residual stream is {len(w.compiled.labels)} numbers at every position. Each value the "
                "model carries owns a few dimensions: a <b>one-hot</b> value one per possible value (exactly one "
                "is 1), a <b>scalar</b> one dimension holding the number, a <b>word</b> one dimension per bit. "
                "<code>bos</code> is 1 at position 0 only and <code>not_bos</code> everywhere else; heads fall "
                "back to BOS and MLPs use <code>not_bos</code> as their constant input. A <code>.frac</code> "
                "dimension is what a <code>width</code> head writes, 1/(w+1).</p>"
                + table(["value", "what it holds", "written by", "encoding", "dims", "labels"], rows))

    def outputs(self) -> str:
        import torch

        from hardwire.runtime.model import decode_column
        w, answer, want = self.w, self.w.answer, self.w.reference
        last = torch.tensor(w.after[-1][1:])
        rows = []
        for name, col in w.compiled.outputs.items():
            got = decode_column(last[:, col["dims"]], col) if col["dims"] else \
                [col.get("value", col["values"][0] if col["values"] else None)] * len(w.tokens)
            ref_ = w.one_pass.get(name)
            rows.append([code(name), self.values(got), self.values(ref_), self.agree(got, ref_)])
        what = {"plain": "this input", "looped": "one pass of the loop (the interpreter stopped after one step)",
                "generating": "the prompt (no token generated yet)"}[w.kind]
        out = ['<h2 id="outputs">6. The outputs</h2>'
               "<p>Each output is decoded from its dimensions of the last residual stream above (the largest one-hot "
               "dimension, the nearest possible value of a scalar, the bits of a word) at positions 1 onward, next "
               f"to the language's reference interpreter on {what}.</p>",
               table(["output", "model", "interpreter", "agree"], rows)]
        if w.kind == "looped":
            rows = [[code(k), self.values(v), self.values(want["outputs"].get(k)),
                     self.agree(v, want["outputs"].get(k))] for k, v in answer["outputs"].items()]
            rows += [[code(k), self.values(answer[k]), self.values(want[k]), self.agree(answer[k], want[k])]
                     for k in ("emitted", "steps", "halted")]
            out.append(f"<p>The whole run: the runtime applied the loop body {answer['steps']} times "
                       f"({'until it halted' if answer['halted'] else 'up to the step limit'}).</p>"
                       + table(["", "model", "interpreter", "agree"], rows))
        elif w.kind == "generating":
            got, ref_ = answer["generated"], want["generated"]
            stopped, why = stop_reason(w.t, w.tokens, got)
            agree = self.agree(got, ref_) if stopped or got != ref_ else \
                '<span class="warn">same tokens, but cut off: no stop token</span>'
            out.append(f"<p>The whole generation: the runtime appends the generated token and runs again. It "
                       f"<b>{esc(why)}</b>.</p>"
                       + table(["", "model", "interpreter", "agree"],
                               [[code("generated"), self.values(got), self.values(ref_), agree],
                                [code("stop reason"), esc(why), "", ""]]))
        return "".join(out)

    @staticmethod
    def values(vs) -> str:
        if vs is None:
            return ""
        return code(" ".join(show(v) for v in vs) if isinstance(vs, list) else show(vs))

    @staticmethod
    def agree(a, b) -> str:
        return '<span class="ok">✓</span>' if a == b else '<span class="bad">✗ differs</span>'

    def build(self) -> str:
        body = self.header() + self.graph() + self.layout_table() + self.walk() + self.steps() + self.outputs()
        return document(f"hardwire explain: {self.w.compiled.config['program']}", body)


def write_page(w: Walk, folder: str) -> list[str]:
    """Write the page, one file, into `folder`; returns the file names written."""
    text = Page(w).build()
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
        f.write(text)
    return ["index.html"]
