"""Map fusion: a map read only by other maps is folded into them (one MLP, not two).

Works on a copy of the program, so the interpreter keeps the program as written.
"""
from __future__ import annotations

import copy
import itertools
import math

from hardwire.compiler.core.sops import Map, Program, SOp, is_hot
from hardwire.compiler.lower import feature_of, inputs_of, walk

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


def fusable(i: SOp, keep: set[int]) -> bool:
    """A plain one-hot map (or flag) that nothing else needs in the residual. A scalar map keeps its own block:
    its none -> 0 step is part of its encoding, not of its fn."""
    return type(i) is Map and id(i) not in keep and feature_of(i) is None and is_hot(i)


def fold(s: Map, chosen: set[int]) -> tuple[list[SOp], list]:
    """s's inputs with the chosen ones replaced by their own inputs: (flat inputs, parts for compose)."""
    flat: list[SOp] = []
    parts = []

    def slot(x: SOp) -> int:
        for j, y in enumerate(flat):
            if y is x:
                return j
        flat.append(x)
        return len(flat) - 1
    for j, i in enumerate(s.inputs):
        if j in chosen:
            parts.append((i.fn, [slot(x) for x in i.inputs]))
        else:
            parts.append((None, [slot(i)]))
    return flat, parts


def valid(flat: list[SOp]) -> bool:
    """One lookup MLP can compute a map of these: one input, or one-hot inputs (flags too) within the budget."""
    ok = len(flat) == 1 or all(is_hot(x) for x in flat)
    return ok and math.prod(len(x.values) for x in flat) <= FUSE_BUDGET


def fuse_maps(prog: Program) -> Program:
    """Fold plain maps into the maps that read them, on a copy of prog. Per map, the largest set of its fusable
    inputs whose folding still gives one valid lookup (all of them when that works; a subset otherwise, e.g.
    `(a == 0) and (b == 0)` folded into an outer `and` whose other input reads a scalar)."""
    prog = copy.deepcopy(prog)
    keep = pinned(prog)
    for s in walk(prog.roots()):  # inputs first: a map's inputs are fused before it reads them
        if type(s) is not Map or feature_of(s) is not None:
            continue
        can = [j for j, i in enumerate(s.inputs) if fusable(i, keep)]
        best = None
        for r in range(len(can), 0, -1):   # the most inputs folded; among equals, the smallest lookup
            for chosen in itertools.combinations(can, r):
                flat, parts = fold(s, set(chosen))
                if valid(flat):
                    size = math.prod(len(x.values) for x in flat)
                    if best is None or size < best[0]:
                        best = (size, flat, parts)
            if best is not None:
                break
        if best is not None:
            s.fn, s.inputs = compose(s.fn, best[2]), tuple(best[1])
    return prog
