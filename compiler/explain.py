"""`hardwire explain PROG.hw --input "..." -o DIR`: a static HTML page that walks one input through the model.

This module compiles the program, places every block (embedding, head, MLP) in its layer, runs the input
through the weights keeping the residual stream after every layer and before every MLP, and writes the
page atomically. explain_text.py writes the blocks back as source text, explain_draw.py draws the
figures (matplotlib, an optional extra) and explain_html.py assembles the page.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import HardwireError

VIZ_HINT = "hardwire explain draws its figures with matplotlib, which is not installed: pip install hardwire[viz]"
BLANK = "·"  # a one-hot value with no dimension on: nothing written there (BOS, or an erased temporary)


@dataclass
class Placed:
    """A block and where the compiler put it: layer 0 is the embedding; `head` indexes the layer's heads."""
    block: Any  # lower.Block
    layer: int
    head: int | None
    segment: int  # 0: the program, or the loop body of a looped program; 1: what follows the loop


@dataclass
class Walk:
    """One input through one compiled program: everything the page shows."""
    prog: Any              # sops.Program as written (the interpreter runs it)
    fused: Any             # sops.Program as compiled (the blocks' SOps)
    source: str
    compiled: Any          # artifact.CompiledModel
    layout: Any            # layout.Layout: the dims of every SOp
    placed: list[Placed]
    tokens: list
    after: list[np.ndarray]            # the residual after the embedding (0) and after every layer: [positions, d]
    mids: dict[int, np.ndarray]        # layer -> the residual entering its MLP (after its heads)
    attention: dict[int, np.ndarray]   # layer -> [heads, queries, keys]
    answer: dict                       # what the model answers (every pass of a loop, or the whole generation)
    reference: dict                    # what the interpreter answers
    one_pass: dict                     # the interpreter's outputs after what the trace ran: one pass, no generation
    body_layers: int = 0
    file: str = ""
    params: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "generating" if self.fused.generate is not None else "looped" if self.fused.loop else "plain"

    @property
    def positions(self) -> list[str]:
        """Tick labels: `0 <bos>`, `1 a`, ..."""
        return [f"{i} {t}" for i, t in enumerate(["<bos>"] + [str(t) for t in self.tokens])]

    @property
    def n_layers(self) -> int:
        return len(self.after) - 1

    def decode(self, s, row: np.ndarray, part: str = "") -> Any:
        """The value of SOp `s` held in one position's residual `row` (as the runtime decodes outputs)."""
        from .sops import ONEHOT, WORD, Affine, Const, Mux
        if isinstance(s, Const):
            return s.value
        if isinstance(s, Mux) and s.target is not None:
            s = s.target
        if isinstance(s, Affine):
            x = sum(c * float(row[d]) for d, c in self.layout.read(s)[0].items())
            return nearest(s.values, x)
        dims = self.layout.dims.get((id(s), part))
        if dims is None:
            return BLANK
        vals = row[dims]
        if part:
            return float(vals[0])
        if s.encoding == WORD:
            bits = [int(v > 0.5) for v in vals]
            return sum(b << k for k, b in enumerate(bits[:-1])) - (bits[-1] << (len(bits) - 1))
        if s.encoding == ONEHOT:
            return s.values[int(np.argmax(vals))] if vals.max() > 0.5 else BLANK
        return nearest(s.values, float(vals[0]))


def nearest(values: tuple, x: float) -> Any:
    """The value of a finite set closest to x (x itself, rounded, when it is far from all of them)."""
    if not values:
        return round(x, 4)
    best = min(values, key=lambda v: abs(float(v) - x) if v is not None else float("inf"))
    return best if abs(float(best) - x) < 1e-3 else round(x, 4)


def place(prog) -> tuple[list[dict], list[Placed]]:
    """The schedules compile_program builds (loop body first), and every block's layer and head index.

    Heads are numbered within a layer in the order wire.py packs them: by sublayer, kind, then label.
    """
    from .lower import ATTN, EMBED, lower, schedule
    from .wire import n_layers
    segments = []
    if prog.loop is not None:
        segments.append(schedule(lower(prog, prog.loop.commits), prog.loop.commits))
    segments.append(schedule(lower(prog)))
    placed: list[Placed] = []
    offset = 0
    for k, when in enumerate(segments):
        heads: dict[int, int] = {}
        for b in sorted(when, key=lambda b: (when[b], b.kind, b.sop.label)):
            if b.kind == EMBED:
                placed.append(Placed(b, 0, None, k))
                continue
            layer = offset + when[b] // 2 + 1
            head = None
            if b.kind == ATTN:
                head = heads.get(layer, 0)
                heads[layer] = head + 1
            placed.append(Placed(b, layer, head, k))
        offset += n_layers(when)
    return segments, placed


def run_layers(t, tokens: list) -> tuple[list[np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The runtime's forward pass on one input, layer by layer, keeping what each layer's MLP reads.

    Transformer.layer adds the heads, then calls self.mlp; a spy on that call sees the residual between them.
    """
    import torch
    ids, lengths = t.encode([tokens])
    after, mids, attention = [], {}, {}
    with torch.no_grad():
        x, mask = t.embed(ids, lengths)
        after.append(x[0].cpu().numpy().astype(np.float64))
        real = t.mlp
        for i in range(t.config["n_layers"]):
            seen: list = []
            t.mlp = lambda y, j, _seen=seen: (_seen.append(y), real(y, j))[1]
            try:
                x, att = t.layer(x, mask, i)
            finally:
                del t.mlp
            mids[i + 1] = seen[0][0].cpu().numpy().astype(np.float64)
            after.append(x[0].cpu().numpy().astype(np.float64))
            if att is not None:
                attention[i + 1] = att[0].cpu().numpy().astype(np.float64)
    return after, mids, attention


def prepare(prog, source: str, file: str, line: str, max_steps: int = 1000) -> Walk:
    """Compile `prog`, refuse a bad input before anything runs, then trace one pass and get both answers."""
    from runtime.model import from_compiled

    from .artifact import compile_program, to_json
    from .explain_text import remember_text
    from .fuse import fuse_maps
    from .harness import interpret_batch, parse_input, run_batch
    from .interpret import execute, validate_input
    from .wire import wire
    tokens = parse_input(line, [to_json(v) for v in prog.vocab], prog.word_vocab)
    validate_input(prog, tokens)  # before compiling: a bad input fails fast
    compiled = compile_program(prog)
    t = from_compiled(compiled, "cpu")
    t.encode([tokens])
    base = copy.deepcopy(prog)
    remember_text(base)
    fused = fuse_maps(base)
    segments, placed = place(fused)
    layout = wire(fused, segments, 0 if fused.loop is not None else None)[0]
    if layout.labels != compiled.labels:
        raise HardwireError("internal: explain's layout differs from the compiler's; please report this", file)
    for layer, cfg in enumerate(compiled.config["layers"], 1):
        found = sum(p.head is not None and p.layer == layer for p in placed)
        if found != cfg["heads"]:
            raise HardwireError(f"internal: explain places {found} heads in layer {layer}, the model has "
                                f"{cfg['heads']}; please report this", file)
    after, mids, attention = run_layers(t, tokens)
    answer = run_batch(t, [tokens], max_steps=max_steps)[0]
    reference = interpret_batch(prog, [tokens], max_steps)[0]
    one_pass = {k: list(vs) for k, vs in execute(prog, tokens, max_steps=1).outputs.items()}  # as decode_column
    body = compiled.config.get("loop", {}).get("body_layers", 0)
    return Walk(prog, fused, source, compiled, layout, placed, tokens, after, mids, attention, answer, reference,
                one_pass, body, file, dict(prog.params))


def check_target(path: str) -> None:
    """Refuse, before any work, a page folder that cannot be written or would overwrite something else:
    DIR may be new, empty, or an earlier explain page (which is replaced whole)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise HardwireError(f"-o {path}: the folder {folder} does not exist; create it first")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise HardwireError(f"-o {path}: is a file; name a folder for the page")
        if os.listdir(path) and not os.path.isfile(os.path.join(path, "index.html")):
            raise HardwireError(f"-o {path}: the folder holds other files; name a new or empty folder "
                                "(an earlier explain page there is replaced)")


def publish(path: str, write: Callable[[str], None]) -> None:
    """Write the page into a temporary folder beside `path`, then rename it into place: a reader sees the old
    page or the whole new one, and an error leaves nothing behind."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=".explain-", dir=folder)
    old = None
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes the folder private; give it the usual mode
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=".explain-old-", dir=folder)
            os.rmdir(old)
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except OSError:
            if old is not None:
                os.rename(old, path)
                old = None
            raise
    except OSError as e:
        raise HardwireError(f"-o {path}: cannot write the page: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise HardwireError(VIZ_HINT) from None


def explain(path: str, line: str, out: str, params: dict | None = None, max_steps: int = 1000) -> dict:
    """Write the page for program `path` on input `line` into folder `out`; returns what the CLI prints."""
    require_matplotlib()
    from .elaborate import check_source
    from .explain_html import write_page
    from .subleq_ref import read_text
    from .validate import refuse_weights
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


def add_parser(sub) -> None:
    from .cli import positive_int
    e = sub.add_parser("explain", help="write an HTML page that walks one input through the compiled model")
    e.add_argument("program")
    e.add_argument("--input", required=True, help='whitespace-separated tokens, e.g. "a b c"')
    e.add_argument("-o", "--output", required=True, metavar="DIR", help="the folder to write index.html and PNGs")
    e.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a compile-time param")
    e.add_argument("--max-steps", type=positive_int, default=1000, help="step limit for the full run of a loop")
    e.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_explain(a) -> dict:
    from .cli import params_arg
    return explain(a.program, a.input, a.output, params_arg(a.param), a.max_steps)

