"""`hardwire explain`: compile a program (or load a weight file), walk one input through it, and publish the page
(hardwire/explain/html.py, or weights.py for a weight file) into a folder atomically."""
from __future__ import annotations

import os

from hardwire.explain.html import write_page
from hardwire.explain.walk import check_target, prepare, publish
from hardwire.explain.weights import WeightPage, is_weight_file, prepare_weights


def explain(path: str, line: str, out: str, params: dict | None = None, max_steps: int = 1000) -> dict:
    """Write the page for program (or weight file) `path` on input `line` into folder `out`; returns what the
    CLI prints."""
    from hardwire.compiler.check.source import read_text
    from hardwire.compiler.core.errors import HardwireError
    check_target(out)
    if is_weight_file(path):
        if params:
            raise HardwireError("--param sets a program's params; a weight file was compiled with its own "
                                "(recompile the .hw to change them)", path)
        ww = prepare_weights(path, line, max_steps)
        text = WeightPage(ww).build()

        def write(tmp: str) -> None:
            with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
                f.write(text)
        publish(out, write)
        c = ww.t.config
        return {"program": c["program"], "input": " ".join(str(t) for t in ww.tokens), "layers": c["n_layers"],
                "heads": sum(x["heads"] for x in c["layers"]), "files": 1, "page": os.path.join(out, "index.html")}
    from hardwire.compiler.check.elaborate import check_source
    source = read_text(path)
    prog = check_source(source, path, params or {})
    w = prepare(prog, source, path, line, max_steps)
    files: list[str] = []
    publish(out, lambda tmp: files.extend(write_page(w, tmp)))
    return {"program": prog.name, "input": " ".join(str(t) for t in w.tokens), "layers": w.n_layers,
            "heads": sum(p.head is not None for p in w.placed), "files": len(files),
            "page": os.path.join(out, "index.html")}
