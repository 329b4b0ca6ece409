"""`hardwire explain`: compile a program, walk one input through it, and publish the page (hardwire/explain/html.py)
into a folder atomically."""
from __future__ import annotations

import os

from hardwire.explain.html import write_page
from hardwire.explain.walk import check_target, prepare, publish, require_matplotlib


def explain(path: str, line: str, out: str, params: dict | None = None, max_steps: int = 1000) -> dict:
    """Write the page for program `path` on input `line` into folder `out`; returns what the CLI prints."""
    require_matplotlib()
    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.check.source import read_text
    from hardwire.compiler.validate import refuse_weights
    check_target(out)
    refuse_weights(path)
    source = read_text(path)
    prog = check_source(source, path, params or {})
    w = prepare(prog, source, path, line, max_steps)
    files: list[str] = []
    publish(out, lambda tmp: files.extend(write_page(w, tmp)))
    return {"program": prog.name, "input": " ".join(str(t) for t in w.tokens), "layers": w.n_layers,
            "heads": sum(p.head is not None for p in w.placed), "images": sum(f.endswith(".png") for f in files),
            "page": os.path.join(out, "index.html")}
