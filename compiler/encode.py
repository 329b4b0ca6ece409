"""Encoding choice: a value gets the narrowest residual encoding that all of its readers can use.

Works on a copy of the program, like fuse.py; the interpreter keeps the program as written. Today's rule,
the one that never changes what a program computes: a `width` that only outputs read is held as a scalar
(1 dimension, its count) instead of one-hot (max_len + 1 dimensions). Its MLP's staircase then writes one
dimension per step, and the output decodes to the nearest count, the same values as before.
"""
from __future__ import annotations

import copy

from hardwire.compiler.core.sops import ONEHOT, SCALAR, Program, SOp, Width
from hardwire.compiler.lower import inputs_of, walk


def readers(prog: Program) -> dict[int, list[SOp]]:
    """For every value the roots reach, the values that read it (by id)."""
    out: dict[int, list[SOp]] = {}
    for s in walk(prog.roots()):
        for i in inputs_of(s):
            out.setdefault(id(i), []).append(s)
    return out


def output_only(prog: Program, s: SOp, read: dict[int, list[SOp]]) -> bool:
    """Is s read by nothing but the program's outputs (not the generated token, not a loop's commits)?"""
    named = [name for name, o in prog.outputs.items() if o is s]
    loop_roots = {id(c) for c in prog.loop.commits} if prog.loop else set()
    return (bool(named) and not read.get(id(s)) and prog.generate not in named and id(s) not in loop_roots)


def choose_encodings(prog: Program) -> Program:
    """A copy of prog in which every output-only one-hot width is a scalar."""
    prog = copy.deepcopy(prog)
    read = readers(prog)
    for s in walk(prog.roots()):
        if isinstance(s, Width) and s.encoding == ONEHOT and output_only(prog, s, read):
            s.encoding = SCALAR
    return prog
