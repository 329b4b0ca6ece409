"""HTML pieces shared by the sections of the `hardwire explain` page: escaping, tables, the inline stylesheet."""
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
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: .4em 0; }
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


def document(title: str, body: str) -> str:
    """A whole page: inline CSS, no script, nothing fetched but the PNGs beside it."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
