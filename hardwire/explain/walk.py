"""The walk behind `hardwire explain`: one input through the compiled model, block by block.

This module compiles the program, places every block (embedding, head, MLP) in its layer, runs the input
through the weights keeping the residual stream after every layer and before every MLP, and publishes a
folder atomically. trace.py records what the weights do (the forward pass, a loop's passes, a generation's
tokens), text.py and names.py write the blocks back in the program's words, svg.py draws the figures,
html.py assembles the page and page.py ties them together.
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

from hardwire.compiler.core.errors import HardwireError

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
    t: Any = None                      # the runtime Transformer the walk ran
    fwd: Any = None                    # trace.Forward: the pass above, with the raw scores
    passes: list = field(default_factory=list)   # trace.Pass: a loop's first passes
    gen: list = field(default_factory=list)      # trace.Token: a generation's first tokens

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
        from hardwire.compiler.core.sops import CODE, ONEHOT, WORD, Affine, Const, Mux, is_flag
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
        if s.encoding == CODE or is_flag(s):   # the value's index (a flag's is its 0/1)
            j = int(round(float(vals[0])))
            return s.values[j] if 0 <= j < len(s.values) and abs(float(vals[0]) - j) < 1e-3 else BLANK
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
    from hardwire.compiler.lower import ATTN, EMBED
    from hardwire.compiler.pipeline import schedules
    from hardwire.compiler.wire import n_layers
    segments = schedules(prog)
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


def prepare(prog, source: str, file: str, line: str, max_steps: int = 1000) -> Walk:
    """Compile `prog`, refuse a bad input before anything runs, then trace one pass and get both answers."""
    from hardwire.compiler.artifact import to_json
    from hardwire.compiler.interpret import execute, validate_input
    from hardwire.compiler.pipeline import compile_program, optimized
    from hardwire.compiler.wire import wire
    from hardwire.explain.text import remember_text
    from hardwire.explain.trace import forward, generation, loop_passes
    from hardwire.harness import interpret_batch, parse_input, run_batch
    from hardwire.runtime.model import from_compiled
    tokens = parse_input(line, [to_json(v) for v in prog.vocab], prog.word_vocab)
    validate_input(prog, tokens)  # before compiling: a bad input fails fast
    compiled = compile_program(prog)
    t = from_compiled(compiled, "cpu")
    t.encode([tokens])
    base = copy.deepcopy(prog)
    remember_text(base)
    fused = optimized(base)
    segments, placed = place(fused)
    layout = wire(fused, segments, 0 if fused.loop is not None else None)[0]
    if layout.labels != compiled.labels:
        raise HardwireError("internal: explain's layout differs from the compiler's; please report this", file)
    for layer, cfg in enumerate(compiled.config["layers"], 1):
        found = sum(p.head is not None and p.layer == layer for p in placed)
        if found != cfg["heads"]:
            raise HardwireError(f"internal: explain places {found} heads in layer {layer}, the model has "
                                f"{cfg['heads']}; please report this", file)
    fwd = forward(t, tokens)
    answer = run_batch(t, [tokens], max_steps=max_steps)[0]
    reference = interpret_batch(prog, [tokens], max_steps)[0]
    one_pass = {k: list(vs) for k, vs in execute(prog, tokens, max_steps=1).outputs.items()}  # as decode_column
    body = compiled.config.get("loop", {}).get("body_layers", 0)
    w = Walk(prog, fused, source, compiled, layout, placed, tokens, fwd.after, fwd.mids, fwd.attention, answer,
             reference, one_pass, body, file, dict(prog.params), t, fwd)
    if w.kind == "looped":
        w.passes = loop_passes(t, tokens)
    elif w.kind == "generating":
        w.gen = generation(t, tokens, answer["generated"])
    return w


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
