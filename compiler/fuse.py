"""Map fusion: a map read only by other maps is folded into them (one MLP, not two).

Works on a copy of the program, so the interpreter keeps the program as written.
"""
from __future__ import annotations

import copy
import math

from .lower import feature_of, inputs_of, walk
from .sops import ONEHOT, Map, Program, SOp

FUSE_BUDGET = 4096  # largest input product a fused lookup may have


def pinned(prog: Program) -> set[int]:
    """Values that must stay in the residual: roots, and inputs of anything but a plain map.

    A plain map read only by other plain maps is folded into each of them (copied if several).
    """
    keep = {id(s) for s in prog.roots()}
    for s in walk(prog.roots()):
        if type(s) is not Map or feature_of(s) is not None:
            keep.update(id(i) for i in inputs_of(s))
    return keep


def compose(outer, parts: list[tuple[object, list[int]]]):
    """outer(*[inner(*args[idx]) or args[idx0]]): parts hold (inner fn or None, positions)."""
    def fn(*args):
        vals = [p[0](*(args[j] for j in p[1])) if p[0] is not None else args[p[1][0]] for p in parts]
        return outer(*vals)
    return fn


def fuse_maps(prog: Program) -> Program:
    prog = copy.deepcopy(prog)
    keep = pinned(prog)
    for s in walk(prog.roots()):  # inputs first: a map's inputs are fused before it reads them
        if type(s) is not Map or feature_of(s) is not None:
            continue
        flat: list[SOp] = []
        parts = []

        def slot(x: SOp) -> int:
            for j, y in enumerate(flat):
                if y is x:
                    return j
            flat.append(x)
            return len(flat) - 1
        for i in s.inputs:
            # a scalar map keeps its own block: its none -> 0 step is part of its encoding, not of its fn
            fusable = type(i) is Map and id(i) not in keep and feature_of(i) is None and i.encoding == ONEHOT
            if fusable:
                parts.append((i.fn, [slot(x) for x in i.inputs]))
            else:
                parts.append((None, [slot(i)]))
        if all(p[0] is None for p in parts):
            continue
        ok = len(flat) == 1 or all(x.encoding == ONEHOT for x in flat)
        if not ok or math.prod(len(x.values) for x in flat) > FUSE_BUDGET:
            continue
        s.fn, s.inputs = compose(s.fn, parts), tuple(flat)
    return prog
