"""The figures of `hardwire explain`: residual heatmaps, attention patterns and the block graph, as PNGs.

matplotlib is an optional extra (pip install hardwire[viz]); the Agg canvas is used directly, without
pyplot's global state, so drawing needs no display and leaks no figures.
"""
from __future__ import annotations

import re
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

KIND_FILL = {"embed": "#e0e0e0", "attn": "#b7d7ee", "mlp": "#fdd9b5"}
KIND_EDGE = {"embed": "#7f7f7f", "attn": "#2c6fa8", "mlp": "#c46a12"}
BAND = ("#f7f7f7", "#ffffff")
CHANGED = "#b30000"
BINARY = re.compile(r"=|\.b\d+$|^(not_)?bos$")  # labels of dimensions that only hold 0 or 1
DPI = 110


def save(fig: Figure, path: str, tight: bool = True) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None, pad_inches=0.12)


def cell_text(v: float) -> str:
    """A cell's value, short: 2, 0.33, -1.5."""
    if abs(v - round(v)) < 5e-4:
        return str(int(round(v)))
    return f"{v:.2f}".replace("0.", ".", 1) if abs(v) < 1 else f"{v:.2f}"


def stacked(positions: list[str]) -> list[str]:
    """`3 a` -> `3\na`: position over token, so tick labels stay horizontal."""
    return [p.replace(" ", "\n", 1) for p in positions]


def residual(path: str, values: np.ndarray, dims: list[str], positions: list[str], changed: set[int],
             groups: list[int], title: str) -> None:
    """The residual stream as a heatmap: one row per dimension (labelled), one column per position (its token).

    Colours are clipped to [-1, 1]. One-hot dimensions, bits and the BOS flags are 0 or 1, so dark red there is
    1; every other non-zero value is also written in its cell. Labels in red are dimensions this layer changed.
    The margins are laid out by hand (no tight bbox): one draw per figure, which keeps wide models quick.
    """
    n_p, n_d = values.shape
    cell_w, cell_h = 0.52, 0.2
    left = 0.3 + max(map(len, dims)) * 8 * 0.6 / 72
    top, bottom = 0.45 + (0.4 if n_d > 30 else 0), 0.75
    width, height = left + n_p * cell_w + 1.3, top + n_d * cell_h + bottom
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((left / width, bottom / height, n_p * cell_w / width, n_d * cell_h / height))
    im = ax.imshow(values.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks(range(n_d), dims, fontsize=8)
    for k, tick in enumerate(ax.get_yticklabels()):
        if k in changed:
            tick.set_color(CHANGED)
            tick.set_fontweight("bold")
    ax.set_xticks(range(n_p), stacked(positions), fontsize=8)
    ax.tick_params(top=True, labeltop=n_d > 30, length=2)
    for g in groups:
        ax.axhline(g - 0.5, color="#555555", lw=0.6)
    ax.set_xticks(np.arange(n_p + 1) - 0.5, minor=True)
    ax.grid(which="minor", axis="x", color="white", lw=0.8)
    ax.tick_params(which="minor", length=0)
    binary = np.array([bool(BINARY.search(label)) for label in dims])  # one-hot values, bits and BOS flags
    for p, d in zip(*np.nonzero((np.abs(values) > 5e-4) & ~(binary[None, :] & (np.abs(values - 1) < 5e-4)))):
        v = values[p, d]
        ax.text(p, d, cell_text(v), ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
    ax.set_xlabel("position and token", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left", pad=34 if n_d > 30 else 6)
    bar_h = min(n_d * cell_h, 3.0)
    cax = fig.add_axes(((left + n_p * cell_w + 0.2) / width, (bottom + n_d * cell_h - bar_h) / height,
                        0.14 / width, bar_h / height))
    bar = fig.colorbar(im, cax=cax, extend="both")
    bar.ax.tick_params(labelsize=7)
    bar.set_label("value (colour clipped to ±1)", fontsize=7)
    save(fig, path, tight=False)


def attention(path: str, pattern: np.ndarray, positions: list[str], title: str) -> None:
    """One head's attention weights: a row per query position, a column per key position (margins by hand)."""
    n = pattern.shape[0]
    lines = textwrap.wrap(title, max(44, int(n * 0.42 * 13)))
    ylabels = [p.replace(" ", ": ", 1) for p in positions]
    cell = max(0.42, 2.2 / n)
    left, bottom = 0.55 + max(map(len, ylabels)) * 8 * 0.6 / 72, 0.85
    top, right = 0.25 + 0.19 * len(lines), 1.0
    width, height = left + n * cell + right, bottom + n * cell + top
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((left / width, bottom / height, n * cell / width, n * cell / height))
    im = ax.imshow(pattern, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n), stacked(positions), fontsize=8)
    ax.set_yticks(range(n), ylabels, fontsize=8)
    ax.set_xlabel("key position (attended to)", fontsize=9)
    ax.set_ylabel("query position (reading)", fontsize=9)
    if n <= 20:
        for q, k in zip(*np.nonzero(pattern > 5e-3)):
            v = pattern[q, k]
            ax.text(k, q, cell_text(v), ha="center", va="center", fontsize=7, color="white" if v > 0.55 else "black")
    ax.set_title("\n".join(lines), fontsize=9, loc="left")
    cax = fig.add_axes(((left + n * cell + 0.15) / width, bottom / height, 0.14 / width, n * cell / height))
    bar = fig.colorbar(im, cax=cax)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("attention weight", fontsize=7)
    save(fig, path, tight=False)


def ordered(columns: list[dict], edges: list[tuple[str, str]]) -> list[list[tuple]]:
    """Each column's nodes sorted by the mean row of their inputs in earlier columns (fewer crossing arrows)."""
    row: dict[str, float] = {}
    preds: dict[str, list[str]] = {}
    for src, dst in edges:
        preds.setdefault(dst, []).append(src)
    out = []
    for col in columns:
        def rank(item: tuple[int, tuple]) -> tuple[float, int]:
            seen = [row[k] for k in preds.get(item[1][0], []) if k in row]
            return (sum(seen) / len(seen) if seen else float("inf"), item[0])
        nodes = [node for _, node in sorted(enumerate(col["nodes"]), key=rank)]
        row.update({node[0]: i for i, node in enumerate(nodes)})
        out.append(nodes)
    return out


def graph(path: str, columns: list[dict], edges: list[tuple[str, str]]) -> None:
    """The block graph: one column per sublayer (embedding, then each layer's heads and MLP), one box per block.

    columns: [{"title", "band" (layer number, 0 for the embedding), "band_title" (optional), "nodes": [(key,
    kind, name, text)]}]; boxes are coloured by kind and sit on a band per layer; edges (key pairs) are data
    dependencies, drawn as arrows clipped to the boxes.
    """
    col_w, line_h, gap, top = 2.95, 0.15, 0.22, 0.62
    wrapped = [[(key, kind, name, textwrap.wrap(text, 44)[:4]) for key, kind, name, text in col]
               for col in ordered(columns, edges)]
    heights = [sum((len(lines) + 1) * line_h + 0.2 + gap for *_, lines in col) for col in wrapped]
    width, height = col_w * len(columns), top + max(heights + [1.0])
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    ax.axis("off")
    boxes: dict[str, tuple] = {}
    bands: dict[tuple, list[int]] = {}
    for i, col in enumerate(columns):
        bands.setdefault((col["band"], col.get("band_title", "")), []).append(i)
    for n, ((band, title), cols) in enumerate(sorted(bands.items(), key=lambda kv: kv[1][0])):
        x0, x1 = cols[0] * col_w, (cols[-1] + 1) * col_w
        ax.axvspan(x0 + 0.04, x1 - 0.04, color="#eeeeee" if band == 0 else BAND[n % 2], zorder=0)
        ax.text((x0 + x1) / 2, -0.1, title or ("embedding" if band == 0 else f"layer {band}"), ha="center",
                va="top", fontsize=10, fontweight="bold")
    for i, (col, nodes) in enumerate(zip(columns, wrapped)):
        cx = (i + 0.5) * col_w
        ax.text(cx, -0.36, col["title"], ha="center", va="top", fontsize=8, color="#444444")
        y = -top - 0.1
        for key, kind, name, lines in nodes:
            h = (len(lines) + 1) * line_h + 0.2
            text = ax.text(cx, y - h / 2, "\n".join([name] + lines), ha="center", va="center", fontsize=7.2,
                           family="monospace", linespacing=1.25, zorder=3,
                           bbox=dict(boxstyle="round,pad=0.35", fc=KIND_FILL[kind], ec=KIND_EDGE[kind], lw=1))
            boxes[key] = (cx, y - h / 2, text)
            y -= h + gap
    FigureCanvasAgg(fig).draw()  # places the boxes, so the arrows below can be clipped to them
    for src, dst in edges:
        if src in boxes and dst in boxes:
            (x0, y0, a), (x1, y1, b) = boxes[src], boxes[dst]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                        arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.7, alpha=0.6, mutation_scale=8,
                                        shrinkA=1, shrinkB=1, patchA=a.get_bbox_patch(), patchB=b.get_bbox_patch(),
                                        connectionstyle="arc3,rad=0.06"))
    save(fig, path, tight=False)
