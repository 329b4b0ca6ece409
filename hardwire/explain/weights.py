"""`hardwire explain M.safetensors`: the page for a weight file, from its tensors and its header alone.

Without the program there are no selectors, formulas or source lines; everything else is the same walk: the
circuit by layer (each head named by the dims its QK and OV views use), the residual layout from the header's
groups, every head's λ, QK view, scores, pattern and OV view, every MLP's neurons, every pair LayerNorm, the
residual after every layer under the header's labels, the step control, and the decoded outputs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from hardwire.explain import views
from hardwire.explain.markup import code, document, esc, fold, table
from hardwire.explain.names import raw_labels
from hardwire.explain.render import Render, tl_head
from hardwire.explain.steps import Steps
from hardwire.explain.svg import Box, diagram
from hardwire.explain.text import show
from hardwire.explain.trace import Forward, forward, generation, loop_passes, stop_reason

MAGIC = b"{"  # a safetensors file: an 8-byte header length, then the JSON header


def is_weight_file(path: str) -> bool:
    """Whether `path` is a safetensors file (by its first bytes, whatever its name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == MAGIC and int.from_bytes(head[:8], "little") < (1 << 30)


@dataclass
class WeightWalk:
    """One input through a weight file's model."""
    t: object
    file: str
    tokens: list
    fwd: Forward
    answer: dict
    passes: list = field(default_factory=list)
    gen: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        c = self.t.config
        return "generating" if "generate" in c else "looped" if "loop" in c else "plain"


def prepare_weights(path: str, line: str, max_steps: int = 1000) -> WeightWalk:
    """Load the file (checked by the runtime's loader), parse and check the input, run it and trace it."""
    from hardwire.harness import parse_input, run_batch
    from hardwire.runtime.model import load
    t = load(path, "cpu")
    cfg = t.config
    tokens = parse_input(line, cfg["vocab"], bool(cfg.get("word_vocab")))
    t.encode([tokens])  # refuses an empty, too long or out-of-vocabulary input before anything runs
    fwd = forward(t, tokens)
    answer = run_batch(t, [tokens], max_steps=max_steps)[0]
    w = WeightWalk(t, path, tokens, fwd, answer)
    if w.kind == "looped":
        w.passes = loop_passes(t, tokens)
    elif w.kind == "generating":
        w.gen = generation(t, tokens, answer["generated"])
    return w


class WeightPage(Render, Steps):
    """The page for a WeightWalk."""

    def __init__(self, w: WeightWalk):
        self.w, self.t, self.fwd = w, w.t, w.fwd
        self.cfg = w.t.config
        self.labels = raw_labels(w.t.labels)
        self.positions = [f"{i} {t}" for i, t in enumerate(["<bos>"] + [str(t) for t in w.tokens])]
        self.group = {}
        for g, grp in enumerate(self.cfg.get("groups", [])):
            for d in grp["dims"]:
                self.group[d] = g
        stack = np.stack(self.fwd.after + list(self.fwd.mids.values()))
        d = len(self.labels)
        self.shown = list(range(d)) if d <= 40 else \
            [int(i) for i in np.flatnonzero(np.abs(stack).max(axis=(0, 1)) > 1e-6)]

    def stepped(self) -> tuple[str, list, list, list]:
        return self.w.kind, self.w.passes, self.w.gen, self.w.tokens

    def top(self, dims: list[int], n: int = 3) -> str:
        names = self.lab(dims)
        return ", ".join(names[:n]) + (f", … ({len(names)})" if len(names) > n else "")

    def header(self) -> str:
        c, w = self.cfg, self.w
        heads = sum(layer["heads"] for layer in c["layers"])
        params = sum(int(p.numel()) for p in self.t.w.values())
        kind = {"plain": "It runs once over the input.",
                "looped": f"It is <b>looped</b>: layers 1–{c.get('loop', {}).get('body_layers')} repeat until its "
                          "halt flag is set; section 5 steps through the passes.",
                "generating": "It <b>generates</b>: section 5 steps through its tokens."}[w.kind]
        return (f"<h1>{esc(c['program'])}: one input through a weight file</h1>"
                f"<p class=small>Weight file {code(os.path.basename(w.file))} · input "
                f"{code(' '.join(str(t) for t in w.tokens))} ({len(w.tokens)} tokens; position 0 is BOS)</p>"
                '<h2 id="program">1. The model</h2>'
                f"<p>The file holds a transformer with <b>{c['n_layers']} layers</b> and <b>{heads} heads</b>, "
                f"d_model = {c['d_model']}, {params:,} parameters. It was compiled from the program "
                f"{code(c['program'])}, whose source is not in the file: this page names every dimension by the "
                "label the header gives it, and every block by the dimensions its weights use. Run "
                "<code>hardwire explain</code> on the .hw file for the selectors and formulas. " + kind + "</p>")

    def circuit(self) -> str:
        bands = [("embedding", [Box("emb", "embed", "embedding", f"{len(self.labels)} labelled dims", "layer-0")])]
        for layer, lc in enumerate(self.cfg["layers"], 1):
            boxes = []
            for h in range(lc["heads"]):
                qk, ov = views.qk(self.t, layer, h), views.ov(self.t, layer, h)
                boxes.append(Box(f"h{layer}.{h}", "attn", f"head {layer}.{h + 1}",
                                 f"q: {self.top(qk.rows)}; k: {self.top(qk.cols)} → {self.top(ov.cols)}",
                                 f"head-{layer}-{h + 1}"))
            if boxes:
                bands.append((f"layer {layer} heads", boxes))
            side = []
            if lc["d_mlp"]:
                w_out = views.weight(self.t, f"layers.{layer - 1}.mlp.W_out")
                side.append(Box(f"m{layer}", "mlp", f"MLP {layer}", f"{lc['d_mlp']} units → "
                                + self.top(views.largest(np.abs(w_out).sum(axis=0))), f"mlp-{layer}"))
            if lc.get("norm_eps") is not None:
                side.append(Box(f"n{layer}", "norm", f"LayerNorm {layer}", f"{len(lc['norm_eps'])} pairs",
                                f"norm-{layer}"))
            if side:
                bands.append((f"layer {layer} MLP", side))
        return ('<h2 id="blocks">2. The circuit, layer by layer</h2><p>One band per sublayer; each head is named '
                "by the query and key dims of its QK view and the dims its OV view writes.</p>"
                + diagram(bands, []))

    def layout(self) -> str:
        rows = [[code(g["name"].lstrip("_") or g["name"]), esc(g["encoding"]),
                 f"{g['dims'][0]}–{g['dims'][-1]}" if len(g["dims"]) > 1 else str(g["dims"][0]),
                 esc(self.top(g["dims"], 8))] for g in self.cfg.get("groups", [])]
        body = table(["value", "encoding", "dims", "labels"], rows)
        return ('<h2 id="layout">3. The residual stream\'s layout</h2>'
                f"<p>{len(self.labels)} dims, grouped as the header records them.</p>"
                + (fold(f"{len(rows)} values", body) if len(rows) > 24 else body))

    def residual(self, layer: int) -> str:
        prev = self.fwd.after[layer - 1] if layer else None
        svg, _ = self.residual_svg(layer, self.fwd.after[layer], prev, lambda d: self.group.get(d, d))
        return f"<p>{self.resid_hook(layer)} Red labels: dims this layer changed.</p><figure>{svg}</figure>"

    def walk(self) -> str:
        out = ['<h2 id="walk">4. Layer by layer</h2><h3 id="layer-0">The embedding</h3>' + self.residual(0)]
        for layer, lc in enumerate(self.cfg["layers"], 1):
            out.append(f'<h3 id="layer-{layer}">Layer {layer} <span class=small>(TransformerLens '
                       f"<code>blocks.{layer - 1}</code>)</span></h3>")
            for h in range(lc["heads"]):
                out.append(f'<h4 id="head-{layer}-{h + 1}"><span class="kind k-attn">head {layer}.{h + 1}</span> '
                           f"<span class=small>({tl_head(layer, h)})</span></h4>" + self.head_views(layer, h))
            if lc["d_mlp"]:
                out.append(f'<h4 id="mlp-{layer}"><span class="kind k-mlp">MLP {layer}</span></h4>'
                           + self.neurons(layer, list(range(lc["d_mlp"]))))
            if lc.get("norm_eps") is not None:
                out.append(f'<h4 id="norm-{layer}"><span class="kind k-norm">LayerNorm {layer}</span></h4>'
                           + self.norm_view(layer))
            out.append(f"<h4>After layer {layer}</h4>" + self.residual(layer))
        return "".join(out)

    def outputs(self) -> str:
        a = self.w.answer
        if self.w.kind == "generating":
            stopped, why = stop_reason(self.t, self.w.tokens, a["generated"])
            rows = [[code("generated"), code(" ".join(show(v) for v in a["generated"]))],
                    [code("stop reason"), f'<span class="{"ok" if stopped else "warn"}">{esc(why)}</span>']]
        else:
            rows = [[code(k), code(" ".join(show(v) for v in vs))] for k, vs in a["outputs"].items()]
            if self.w.kind == "looped":
                rows += [[code(k), code(show(a[k]) if not isinstance(a[k], list) else " ".join(map(show, a[k])))]
                         for k in ("emitted", "steps", "halted")]
        return ('<h2 id="outputs">6. The outputs</h2><p>What the model answers (the runtime decodes the last '
                "residual stream); with no program in the file there is no interpreter to compare with.</p>"
                + table(["output", "model"], rows))

    def build(self) -> str:
        body = self.header() + self.circuit() + self.layout() + self.walk() + self.steps() + self.outputs()
        return document(f"hardwire explain: {self.cfg['program']} (weight file)", body)
