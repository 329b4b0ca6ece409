"""HTML pieces shared by the sections of the `hardwire explain` page: escaping, tables, folds, the inline
stylesheet and the inline script of the step controls."""
from __future__ import annotations

import html
from typing import Any

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1d; max-width: 1150px;
       margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2.2em; border-bottom: 2px solid #ddd; }
h3 { margin-top: 1.8em; } h4 { margin: 1.4em 0 .4em; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .92em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .8em 1em; overflow-x: auto; line-height: 1.35; }
pre .ln { color: #999; user-select: none; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .9em; }
th, td { border: 1px solid #d8d8d8; padding: .2em .55em; text-align: left; vertical-align: top; }
th { background: #f1f1f1; } td.num { text-align: right; } tr.hit td { background: #fff4d6; }
svg.heat { max-width: 100%; height: auto; font: 11px ui-monospace, Menlo, Consolas, monospace; }
svg.heat rect:hover { stroke: #000; stroke-width: 1.5; }
svg.diagram { display: block; margin: .6em 0; }
figure { margin: .6em 0 1em; overflow-x: auto; } figcaption { font-size: .85em; color: #444; }
details { margin: .5em 0; } summary { cursor: pointer; color: #2c6fa8; }
code.hook { background: #eef3e6; color: #35530f; }
.stepper { border: 1px solid #cbd6e2; border-radius: 5px; padding: .6em .9em; margin: 1em 0; background: #fbfcfe; }
.stepper .bar { display: flex; gap: .6em; align-items: center; margin-bottom: .5em; }
.stepper .bar input { flex: 1; }
.stepper .step figure { display: inline-block; vertical-align: top; margin-right: 1.2em; }
.stepper .step { display: none; } .stepper .step.on { display: block; }
.side { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1.2em; }
tr.gap td { font-style: italic; color: #777; background: #fafafa; }
.warn { color: #9a5b00; font-weight: bold; } .links a { font-size: .8em; margin-left: .4em; }
.note { background: #eef5fb; border-left: 4px solid #2c6fa8; padding: .5em .9em; margin: 1em 0; }
.kind { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .85em; }
.k-embed { background: #e0e0e0; } .k-attn { background: #b7d7ee; } .k-mlp { background: #fdd9b5; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #b30000; font-weight: bold; }
nav ol { columns: 2; } .small { color: #555; font-size: .88em; }
.wide { overflow-x: auto; } .wide img { max-width: none; }
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def code(x: Any) -> str:
    return f"<code>{esc(x)}</code>"


def table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table; cells are already HTML."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


SCRIPT = """
document.querySelectorAll('.stepper').forEach(function (box) {
  var steps = box.querySelectorAll('.step'), range = box.querySelector('input'), label = box.querySelector('.at');
  function show(i) {
    i = Math.max(0, Math.min(steps.length - 1, i));
    steps.forEach(function (s, k) { s.classList.toggle('on', k === i); });
    range.value = i; label.textContent = steps[i].getAttribute('data-label');
  }
  box.querySelector('.prev').addEventListener('click', function () { show(+range.value - 1); });
  box.querySelector('.next').addEventListener('click', function () { show(+range.value + 1); });
  range.addEventListener('input', function () { show(+range.value); });
  show(0);
});
"""


def fold(summary: str, body: str, open_: bool = False) -> str:
    """A folded block (<details>): `summary` is plain text, `body` HTML."""
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{body}</details>"


def stepper(ident: str, frames: list[tuple[str, str]]) -> str:
    """A step control: prev / next buttons and a slider showing one frame (label, HTML) at a time."""
    if not frames:
        return ""
    steps = "".join(f'<div class="step" data-label="{esc(label)}">{body}</div>' for label, body in frames)
    return (f'<div class="stepper" id="{esc(ident)}"><div class="bar"><button class="prev" type="button">◀ prev'
            f'</button><input type="range" min="0" max="{len(frames) - 1}" value="0" aria-label="step">'
            f'<button class="next" type="button">next ▶</button><span class="at"></span></div>{steps}</div>')


def document(title: str, body: str) -> str:
    """A whole page in one file: inline CSS, inline SVG, one inline script (the step controls); nothing fetched."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}"
            f"<script>{SCRIPT}</script></body></html>\n")
