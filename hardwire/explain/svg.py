"""The figures of `hardwire explain` as inline SVG written directly: heatmaps with a hover title per cell, and
the circuit diagram by layer.

No plotting library and nothing fetched: every figure is text in the page, scaled to the page's width by its
viewBox, and every cell carries a <title> (its row label, column label and value), so a reader hovering a cell
sees what dimension it is and what it holds.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from hardwire.explain.markup import esc

CELL, ROW_H, CHAR = 30, 17, 6.6   # px: a cell's width and height, and one label character at 11px
KIND_FILL = {"embed": "#e6e6e6", "attn": "#cfe3f3", "mlp": "#fde3c8", "norm": "#e3d7f3"}
KIND_EDGE = {"embed": "#7f7f7f", "attn": "#2c6fa8", "mlp": "#c46a12", "norm": "#6a4ca8"}


def cell_text(v: float) -> str:
    """A cell's value, short: 2, .33, -1.5."""
    if abs(v - round(v)) < 5e-4:
        return str(int(round(v)))
    return f"{v:.2f}".replace("0.", ".", 1) if abs(v) < 1 else f"{v:.3g}"


def colour(v: float, lo: float, hi: float) -> str:
    """A diverging colour (blue below 0, red above) for lo < 0 < hi, else a single-hue ramp from white."""
    if lo < 0:
        t = max(-1.0, min(1.0, v / (hi if v > 0 else -lo) if v else 0.0))
        r, g, b = (178, 24, 43) if t > 0 else (33, 102, 172)
        a = abs(t)
    else:
        a = 0.0 if hi <= lo else max(0.0, min(1.0, (v - lo) / (hi - lo)))
        r, g, b = (8, 69, 148)
    mix = [round(255 + (c - 255) * a) for c in (r, g, b)]
    return "#{:02x}{:02x}{:02x}".format(*mix)


def ink(fill: str) -> str:
    """Black or white text, whichever reads on `fill`."""
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#fff" if 0.3 * r + 0.59 * g + 0.11 * b < 120 else "#111"


@dataclass
class Heat:
    """A heatmap: values[row, col] with labelled rows and columns (rows are what a reader names: dimensions)."""
    values: np.ndarray
    rows: list[str]
    cols: list[str]
    lo: float = -1.0
    hi: float = 1.0
    marked: frozenset = frozenset()   # row indices drawn in red (e.g. dims this layer changed)
    groups: tuple = ()                # row indices where a new value's dims start (a rule above them)
    numbers: bool = True              # write the value in cells that are not 0 (and not a plain 1 of a flag)
    flags: tuple = ()                 # per row: True where the row only holds 0 or 1 (its 1s are not written)
    cls: str = "heat"
    tip: str = "{row} · {col}: {value}"


def heatmap(h: Heat) -> str:
    """The heatmap as an <svg>: row labels on the left, column labels on top, a <title> per cell."""
    n_r, n_c = h.values.shape
    left = 8 + CHAR * max([len(r) for r in h.rows] + [4])
    longest = min(max([len(c) for c in h.cols] + [2]), 14)
    top = 12 + CHAR * longest * 0.87                       # column labels rise at 60 degrees
    width, height = left + n_c * CELL + 8 + CHAR * longest * 0.5, top + n_r * ROW_H + 8
    out = [f'<svg class="{h.cls}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" role="img">']
    for c, label in enumerate(h.cols):
        x = left + (c + 0.5) * CELL
        out.append(f'<text class="cl" transform="translate({x + 3:.1f},{top - 4:.1f}) rotate(-60)">'
                   f"{esc(label[:14])}</text>")
    for r, label in enumerate(h.rows):
        y = top + r * ROW_H
        mark = ' fill="#b30000" font-weight="bold"' if r in h.marked else ""
        out.append(f'<text class="rl" x="{left - 4:.1f}" y="{y + ROW_H - 5}" text-anchor="end"{mark}>'
                   f"{esc(label)}</text>")
        for c in range(n_c):
            v = float(h.values[r, c])
            x = left + c * CELL
            if v != v:  # NaN: a masked cell (a key the query may not see)
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{CELL - 1}" height="{ROW_H - 1}" fill="#d9d9d9">'
                           f"<title>{esc(label)} · {esc(h.cols[c])}: masked</title></rect>")
                continue
            fill = colour(v, h.lo, h.hi)
            tip = h.tip.format(row=label, col=h.cols[c], value=cell_text(v))
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{CELL - 1}" height="{ROW_H - 1}" fill="{fill}">'
                       f"<title>{esc(tip)}</title></rect>")
            flag = bool(h.flags[r]) if h.flags else False
            if h.numbers and abs(v) > 5e-4 and not (flag and abs(v - 1) < 5e-4):
                out.append(f'<text class="cv" x="{x + CELL / 2 - 0.5:.1f}" y="{y + ROW_H - 5}" '
                           f'text-anchor="middle" fill="{ink(fill)}">{esc(cell_text(v))}</text>')
    for g in h.groups:
        y = top + g * ROW_H - 0.5
        out.append(f'<line x1="{left}" x2="{left + n_c * CELL}" y1="{y}" y2="{y}" stroke="#555" '
                   'stroke-width="0.8"/>')
    out.append("</svg>")
    return "".join(out)


@dataclass
class Box:
    """One block in the circuit diagram."""
    key: str
    kind: str          # embed, attn, mlp, norm
    name: str          # `head 1.1 → ones`
    text: str          # what it computes
    anchor: str = ""   # the page's id for the block's section (the box links there)


BOX_W, LINE, PAD, GAP = 236, 13, 6, 10
PAGE_W = 1100


def diagram(bands: list[tuple[str, list[Box]]], edges: list[tuple[str, str]]) -> str:
    """The circuit by layer: one horizontal band per sublayer (embedding, then each layer's heads and its MLP),
    top to bottom, boxes wrapping inside a band, so the figure is as wide as the page whatever the depth."""
    per_row = max(1, (PAGE_W - 130) // (BOX_W + GAP))
    out, back, pos, y = [], [], {}, 6
    for title, boxes in bands:
        lines = [[b.name if len(b.name) <= 36 else b.name[:35] + "…"] + textwrap.wrap(b.text, 36)[:3]
                 for b in boxes]
        rows = [list(range(i, min(i + per_row, len(boxes)))) for i in range(0, len(boxes), per_row)] or [[]]
        band_h = sum(max([len(lines[i]) for i in row] + [1]) * LINE + 2 * PAD + GAP for row in rows) + GAP
        back.append(f'<rect x="0" y="{y}" width="{PAGE_W}" height="{band_h}" fill="#f6f6f6" stroke="#ddd"/>'
                   f'<text x="8" y="{y + 16}" font-weight="bold" font-size="12">{esc(title)}</text>')
        yy = y + GAP
        for row in rows:
            h_row = max([len(lines[i]) for i in row] + [1]) * LINE + 2 * PAD
            for k, i in enumerate(row):
                b = boxes[i]
                x = 130 + k * (BOX_W + GAP)
                pos[b.key] = (x + BOX_W / 2, yy, yy + h_row)
                body = "".join(f'<tspan x="{x + 6}" dy="{LINE if j else LINE - 2}"'
                               f'{" font-weight=" + chr(34) + "bold" + chr(34) if j == 0 else ""}>{esc(t)}</tspan>'
                               for j, t in enumerate(lines[i]))
                box = (f'<rect x="{x}" y="{yy}" width="{BOX_W}" height="{h_row}" rx="5" fill="{KIND_FILL[b.kind]}" '
                       f'stroke="{KIND_EDGE[b.kind]}"><title>{esc(b.name + ": " + b.text)}</title></rect>'
                       f'<text y="{yy + PAD}" font-size="10.5" font-family="monospace">{body}</text>')
                out.append(f'<a href="#{esc(b.anchor)}">{box}</a>' if b.anchor else box)
            yy += h_row + GAP
        y += band_h + 4
    arrows = []
    for src, dst in edges:
        if src in pos and dst in pos and pos[src][1] < pos[dst][1]:
            (x0, _, y0), (x1, y1, _) = pos[src], pos[dst]
            arrows.append(f'<path d="M{x0:.0f},{y0} C{x0:.0f},{(y0 + y1) / 2:.0f} {x1:.0f},{(y0 + y1) / 2:.0f} '
                          f'{x1:.0f},{y1}" fill="none" stroke="#555" stroke-opacity="0.45" marker-end="url(#arr)"/>')
    head = (f'<svg class="diagram" viewBox="0 0 {PAGE_W} {y + 4}" width="100%" role="img" '
            '><defs><marker id="arr" viewBox="0 0 8 8" refX="8" refY="4" '
            'markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>')
    return head + "".join(back) + "".join(arrows) + "".join(out) + "</svg>"
