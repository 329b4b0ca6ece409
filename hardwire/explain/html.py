"""The page of `hardwire explain`: one self-contained HTML file (inline CSS, no script) and the PNGs it shows.

Sections: the program and its size; the block graph; the residual layout; the walk through the layers
(the embedding, then each layer's heads, MLPs and residual stream); the outputs next to the interpreter's.
"""
from __future__ import annotations

import os

import numpy as np

from hardwire.compiler.core.sops import Mux, Register, Width
from hardwire.compiler.lower import ATTN, EMBED, MLP
from hardwire.explain import draw
from hardwire.explain.layers import Layers
from hardwire.explain.markup import code, document, esc, table
from hardwire.explain.text import NAME, definition, formula, ref, selector, show, source_line
from hardwire.explain.walk import Placed, Walk

WIDE = 40  # a residual wider than this shows only the dimensions that are non-zero somewhere


class Page(Layers):
    """Builds the page's HTML and figures for one Walk into `folder` (section 4 comes from Layers)."""

    def __init__(self, w: Walk, folder: str):
        self.w, self.folder, self.files = w, folder, []
        self.lines = w.source.splitlines()
        self.owner = self.owners()
        self.shown = self.shown_dims()

    # ---- helpers -------------------------------------------------------------------------------
    def png(self, name: str) -> str:
        self.files.append(name)
        return os.path.join(self.folder, name)

    def img(self, name: str, alt: str) -> str:
        return f'<img src="{esc(name)}" alt="{esc(alt)}">'

    def owners(self) -> dict[int, tuple]:
        """Every residual dimension's feature: (a key for the value it belongs to, its name: `ones`, `ones.frac`)."""
        own: dict[int, tuple] = {0: ("bos", "BOS flags"), 1: ("bos", "BOS flags")}
        if self.w.layout.index is not None:
            own[self.w.layout.index] = ("index", "index")
        by_id = {id(p.block.sop): p.block.sop for p in self.w.placed}
        for (sid, part), dims in self.w.layout.dims.items():
            s = by_id.get(sid)
            for d in dims:
                own[d] = ((sid, part), (s.label if s is not None else "?") + part)
        return own

    def writers(self) -> dict:
        """Which block writes each value (by owner key): `embedding`, `head 1.1`, `MLP 2`; registers are also
        rewritten by the loop's last MLP."""
        out: dict = {"bos": "embedding", "index": "embedding"}
        for p in self.w.placed:
            s, kind = p.block.sop, p.block.kind
            if isinstance(s, Mux) and s.target is not None:
                key = (id(s.target), "")
                out[key] = f"{out.get(key, 'embedding')}; rewritten by MLP {p.layer}"
                continue
            key = (id(s), ".frac" if kind == ATTN and isinstance(s, Width) else "")
            out.setdefault(key, "embedding" if kind == EMBED else
                           f"head {p.layer}.{p.head + 1}" if kind == ATTN else f"MLP {p.layer}")
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
        return formula(self.w.fused, s, "mlp" if not isinstance(s, Register) else "embed", self.lines)

    # ---- sections ------------------------------------------------------------------------------
    def header(self) -> str:
        w = self.w
        s = w.compiled.summary()
        params = ", ".join(f"{k} = {v}" for k, v in w.params.items())
        src = "\n".join(f'<span class="ln">{i:>3}  </span>{esc(line)}' for i, line in enumerate(self.lines, 1))
        kind = {
            "plain": "It runs once over the input: the outputs are read off the last layer's residual stream.",
            "looped": (f"It is a <b>looped</b> program: layers 1–{w.body_layers} are the loop body, which the runtime "
                       "applies again and again until the halt test holds. <b>This page shows one pass of the loop "
                       "body</b>, the first, on the input as loaded into the registers; section 5 also gives the "
                       "answer after the whole run."),
            "generating": ("It is a <b>generating</b> program: the runtime appends the next token and runs again. "
                           "<b>This page shows the forward pass over the prompt</b>; the next token is "
                           f"{code(w.fused.generate)} at the last position."),
        }[w.kind]
        lead = (f"<p>{code(s['program'])} compiles to a transformer with <b>{s['layers']} layer"
                f"{'s' * (s['layers'] != 1)}</b> and <b>{s['heads']} attention head{'s' * (s['heads'] != 1)}</b> in "
                f"all. Its residual stream has <b>d_model = {s['d_model']}</b> dimensions, each with a label; its "
                f"widest MLP has <b>d_mlp = {s['d_mlp']}</b> hidden units and its heads d_head = {s['d_head']}. "
                f"That is <b>{s['params']:,} parameters</b>, of which {s['nonzero_params']:,} are non-zero. "
                "Every head is a hard attention head (it attends to the keys its selector picks, and to the BOS "
                "token at position 0 when it picks none), and every MLP is an exact lookup table. " + kind + "</p>")
        return (f"<h1>{esc(s['program'])}: one input through the compiled transformer</h1>"
                f"<p class=small>Program {code(os.path.basename(w.file))}{', params ' + esc(params) if params else ''}"
                f" · input {code(' '.join(str(t) for t in w.tokens))} ({len(w.tokens)} tokens; position 0 is BOS)"
                "</p>" + self.contents() +
                f'<h2 id="program">1. The program</h2><pre>{src}</pre>{lead}')

    def contents(self) -> str:
        items = [("program", "The program"), ("blocks", "The blocks and their layers"),
                 ("layout", "The residual stream's layout"), ("walk", "Layer by layer"), ("outputs", "The outputs")]
        return "<nav><ol>" + "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in items) + "</ol></nav>"

    def graph(self) -> str:
        w = self.w
        columns, rows = [], []
        segments = sorted({p.segment for p in w.placed})
        shown_embeds: set[int] = set()
        for seg in segments:
            mine = [p for p in w.placed if p.segment == seg]
            if seg > 0 and all(p.block.kind == EMBED for p in mine):
                continue
            embeds = [p for p in mine if p.block.kind == EMBED]
            title = "registers and inputs" if w.kind == "looped" and seg == 0 else "after the loop" if seg else ""
            columns.append({"title": "token / position features", "band": 0, "band_title": title or "embedding",
                            "nodes": [self.node(p) for p in embeds]})
            layers = sorted({p.layer for p in mine if p.layer})
            for layer in layers:
                for kind, name in ((ATTN, "heads"), (MLP, "MLP")):
                    ps = [p for p in mine if p.layer == layer and p.block.kind == kind]
                    if ps:
                        columns.append({"title": name, "band": layer, "nodes": [self.node(p) for p in ps]})
            for p in mine:
                if p.block.kind == EMBED and id(p.block.sop) in shown_embeds:
                    continue
                shown_embeds.add(id(p.block.sop))
                b = p.block
                where = "embedding" if b.kind == EMBED else f"layer {p.layer}"
                what = {EMBED: "embedding", ATTN: f"head {p.layer}.{p.head + 1}" if p.head is not None else "head",
                        MLP: "MLP"}[b.kind]
                text = self.node(p)[3]
                line = source_line(self.lines, b.sop)
                rows.append([esc(where), f'<span class="kind k-{b.kind}">{what}</span>', code(b.sop.label),
                             code(text), f"{b.sop.line}: {code(line)}" if line else ""])
        edges = [(self.key(a), self.key(b)) for a, b in self.graph_edges()]
        draw.graph(self.png("graph.png"), columns, edges)
        return ('<h2 id="blocks">2. The blocks and their layers</h2>'
                "<p>The compiler turns every value the program needs into a <b>block</b>: an embedding feature "
                "(a function of the token alone or of the position alone, folded into the embedding tables), an "
                "attention <b>head</b> (every <code>aggregate</code> and <code>width</code>), or an <b>MLP</b> (every "
                "other elementwise computation, as a lookup table). Each block goes into the earliest layer whose "
                "inputs are ready: a head needs its inputs from an earlier layer, an MLP can read the heads of its own "
                "layer. Arrows are data dependencies; grey boxes are embedding features, blue boxes heads, orange "
                "boxes MLPs; each layer has its own band.</p>"
                + '<div class="wide">' + self.img("graph.png", "block graph") + "</div>" +
                table(["where", "block", "value", "computes", "source line"], rows))

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

    def node(self, p: Placed) -> tuple[str, str, str, str]:
        """(key, kind, name, text) for the block graph: what the block is and what it computes."""
        s, kind = p.block.sop, p.block.kind
        if kind == EMBED:
            if isinstance(s, Register):
                return self.key(p), kind, f"{s.label} (register)", "its value at the start of the pass"
            text = definition(s)[0]
            if not NAME.match(s.label):
                return self.key(p), kind, "embedded", text
            return self.key(p), kind, f"{s.label} (embedded)", "" if text == s.label else text
        if kind == ATTN:
            if isinstance(s, Width):
                return self.key(p), kind, f"head {p.layer}.{p.head + 1} → {s.label}.frac", definition(s)[0]
            return self.key(p), kind, f"head {p.layer}.{p.head + 1} → {s.label}", \
                f"{selector(s.selector)} → {ref(s.value)}"
        text = self.say(s)
        if isinstance(s, Mux) and s.target is not None:
            return self.key(p), kind, f"MLP → {s.target.label} (commit)", text.split("   (")[0]
        return self.key(p), kind, f"MLP → {s.label}", text.split(" = ", 1)[-1].split("   (")[0]

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
                meaning.setdefault(key, "1/(w+1), w = " + definition(s)[0] if key[1] else self.node(p)[3])
        rows = []
        for key, (name, dims) in groups.items():
            labels = [w.compiled.labels[d] for d in dims]
            enc = ("flags" if key == "bos" else "scalar" if len(dims) == 1 and "=" not in labels[0]
                   else "word (bits, lowest first)" if labels[0].endswith(".b0") else "one-hot")
            span = f"{dims[0]}" if len(dims) == 1 else f"{dims[0]}–{dims[-1]}"
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
        out = ['<h2 id="outputs">5. The outputs</h2>'
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
            out.append("<p>The whole generation: the runtime appends the generated token and runs again.</p>"
                       + table(["", "model", "interpreter", "agree"],
                               [[code("generated"), self.values(answer["generated"]),
                                 self.values(want["generated"]), self.agree(answer["generated"], want["generated"])]]))
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
        body = self.header() + self.graph() + self.layout_table() + self.walk() + self.outputs()
        return document(f"hardwire explain: {self.w.compiled.config['program']}", body)


def write_page(w: Walk, folder: str) -> list[str]:
    """Draw every figure into `folder`, then write index.html last; returns the file names written."""
    page = Page(w, folder)
    text = page.build()
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
        f.write(text)
    return page.files + ["index.html"]
