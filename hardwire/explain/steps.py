"""Section 5 of the page: a step control through a loop's passes (the registers before each pass and what each
head read in it) or a generation's tokens (the sequence so far, the token produced, what each head read at the
last position). The frames are recorded by trace.py from the weights; markup.SCRIPT shows one at a time.
"""
from __future__ import annotations

import numpy as np

from hardwire.explain.markup import code, esc, stepper, table
from hardwire.explain.svg import Heat, heatmap
from hardwire.explain.text import show
from hardwire.explain.trace import PASSES, TOKENS, Pass, Token

SMALL = 24  # a pattern over at most this many positions is drawn; a longer one is listed


def reads(att: np.ndarray, names: list[str]) -> str:
    """`3 (b) 1.0, 4 (c) .5`: the keys a query gives weight, with their tokens and weights."""
    keys = np.flatnonzero(att > 0.01)
    return ", ".join(f"{k} ({names[k]}) {att[k]:.2g}" for k in keys)


class Steps:
    """The step control (a mixin: the page provides `t`, `head_label(layer, head)` and `stepped()`)."""

    def steps(self) -> str:
        kind, passes, gen, tokens = self.stepped()
        if kind == "looped":
            return self.loop_steps(passes, tokens)
        if kind == "generating":
            return self.gen_steps(gen)
        return ('<h2 id="steps">5. Step by step</h2><p>A plain program runs once: section 4 is its only step.</p>')

    def head_label(self, layer: int, head: int) -> str:
        return f"head {layer}.{head + 1}"

    def loop_steps(self, passes: list[Pass], tokens: list) -> str:
        frames = []
        prev: dict | None = None
        cols = [f"{i} {t}" for i, t in enumerate(tokens, 1)]
        for p in passes:
            rows, classes = [], []
            for name, vals in p.registers.items():
                old = prev.get(name) if prev else None
                cells = [f'<b>{esc(show(v))}</b>' if old is not None and old[i] != v else esc(show(v))
                         for i, v in enumerate(vals)]
                rows.append([code(name)] + cells)
                classes.append("hit" if old is not None and old != vals else "")
            regs = table(["register"] + [esc(c) for c in cols], rows, classes)
            heads = []
            for layer, att in sorted(p.attention.items()):
                for h in range(att.shape[0]):
                    heads.append(self.pattern_or_list(layer, h, att[h], ["BOS"] + [str(t) for t in tokens]))
            end = ("it <b>halts</b> here: the halt test held after this pass, so its result is not kept" if p.halted
                   else "the registers go on to the next pass")
            emit = f"; it emits {code(show(p.emitted))}" if p.emitted is not None else ""
            frames.append((f"pass {p.step}", f"<p>Pass {p.step}: the registers as this pass reads them (bold: "
                           f"changed by the pass before); {end}{emit}.</p>" + regs + "".join(heads)))
            prev = p.registers
        more = (f" The control shows the first {PASSES} passes; the run took more (section 6)."
                if len(passes) == PASSES and not passes[-1].halted else "")
        return ('<h2 id="steps">5. Step by step: the passes of the loop</h2>'
                "<p>Each frame is one pass of the loop body, re-run from the weights: the registers it starts from "
                "and what each of the body's heads read (the keys each query gave weight)." + more + "</p>"
                + stepper("loop-steps", frames))

    def pattern_or_list(self, layer: int, h: int, att: np.ndarray, names: list[str]) -> str:
        label = self.head_label(layer, h)
        n = att.shape[0]
        if n <= SMALL:
            pos = [f"{i} {t}" for i, t in enumerate(names)]
            svg = heatmap(Heat(att, [f"q{p}" for p in pos], [f"k{p}" for p in pos], 0.0, 1.0, numbers=False,
                               tip="query {row} reads key {col} with weight {value}"))
            return f"<figure><figcaption>{esc(label)}: attention pattern in this pass.</figcaption>{svg}</figure>"
        rows = [[str(q), esc(names[q]), esc(reads(att[q], names))] for q in range(1, n)]
        return f"<p>{esc(label)}:</p>" + table(["query", "token", "reads keys (token) weight"], rows)

    def gen_steps(self, gen: list[Token]) -> str:
        frames = []
        for g in gen:
            names = ["BOS"] + [str(t) for t in g.tokens]
            rows = [[esc(self.head_label(layer, h)), esc(reads(att, names))]
                    for (layer, h), att in sorted(g.reads.items())]
            seq = " ".join(esc(t) for t in g.tokens)
            frames.append((f"token {g.step}: {show(g.produced)}",
                           f"<p>Step {g.step}: the model reads <code>{seq}</code> ({len(g.tokens)} tokens) and "
                           f"produces <b>{code(show(g.produced))}</b> at the last position {len(g.tokens)}. What each "
                           "head read there (position (token) weight):</p>"
                           + table(["head", "the last position reads"], rows)))
        more = f" The control shows the first {TOKENS} tokens; section 6 has them all." if len(gen) == TOKENS else ""
        return ('<h2 id="steps">5. Step by step: the generated tokens</h2>'
                "<p>Each frame is one generation step, re-run from the weights over the sequence so far: the token "
                "the model produced and what each head read at the last position." + more + "</p>"
                + stepper("gen-steps", frames))
