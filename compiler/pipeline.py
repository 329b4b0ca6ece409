"""The compiler as a straight list of stages: text -> checked program -> block graph -> schedule -> residual
layout -> weights -> artifact. Each stage is one module of this package; this file only calls them in order."""
from __future__ import annotations

import time

from hardwire.compiler.artifact import CompiledModel, build
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.combine import combine_selectors
from hardwire.compiler.core.sops import Program
from hardwire.compiler.cse import merge_common
from hardwire.compiler.encode import choose_encodings
from hardwire.compiler.fuse import fuse_maps
from hardwire.compiler.lower import lower, schedule
from hardwire.compiler.mask import mask_causal
from hardwire.compiler.split import split_ranks
from hardwire.compiler.wire import n_layers, wire


def optimized(prog: Program) -> Program:
    """The program the compiler wires: equal values merged (`cse`), a causal mask where every selector looks back
    (`mask`), a `|` across keys made one select (`combine`), a count of smaller lexicographic keys made two counts
    (`split`), encodings chosen (`encode`), then maps folded into their readers (`fuse`). A copy; explain and the
    head tables call this too, so they place the same blocks."""
    return fuse_maps(choose_encodings(split_ranks(combine_selectors(mask_causal(merge_common(prog))))))


def schedules(prog: Program) -> list[dict]:
    """The block graph's schedules, one per segment: a loop's body first (it commits its registers), then the
    whole program. Each maps a block to its sublayer (`lower.schedule`)."""
    segments = []
    if prog.loop is not None:
        segments.append(schedule(lower(prog, prog.loop.commits), prog.loop.commits))
    segments.append(schedule(lower(prog)))
    return segments


def compile_program(prog: Program, max_params: int | None = None, positions: str = "auto") -> CompiledModel:
    """Checked program -> CompiledModel.

    max_params: refuse (HardwireError naming the size) a model with more parameters, before allocating it.
    positions: "auto", "formula" or "table", how the position rows are stored (wire.position_form).
    """
    t0 = time.perf_counter()
    prog = optimized(prog)                                     # 1. masked, combined, encoded, maps folded
    segments = schedules(prog)                                 # 2. block graph and schedule (a loop's body first)
    loop_index = 0 if prog.loop is not None else None
    layout, tok, pos, bits, layers = wire(prog, segments, loop_index, max_params,  # 3. residual layout and weights
                                          positions)
    body = 0 if prog.loop is None else n_layers(segments[0])
    model = build(prog, layout, tok, pos, layers, bits, body)  # 4. the artifact: tensors, config, labels
    model.compile_s = round(time.perf_counter() - t0, 4)      # kept out of the file: compiles are byte-identical
    return model


def compile_source(text: str, file: str = "<input>", params: dict[str, int] | None = None,
                   max_params: int | None = None) -> CompiledModel:
    """Program text -> CompiledModel: check it (the parser and elaborator), then compile it."""
    return compile_program(check_source(text, file, params), max_params)


def compile_file(path: str, params: dict[str, int] | None = None, max_params: int | None = None) -> CompiledModel:
    """A .hw file -> CompiledModel."""
    return compile_program(check_file(path, params), max_params)
