"""Rank splitting: a count of smaller keys, where the key orders positions as a pair of values does, is the sum of
two counts that need no key at all.

`width(select(m, m, <))` with m = f(a, b) (Tracr's sort: `key = token + i / max_len`) counts the keys below the
query's. Its select reads m one-hot, one dimension per (a, b) combination. When f orders every two combinations
that can meet exactly as (a, b) do lexicographically, `m_k < m_q` is `a_k < a_q`, or else `a_k == a_q` and
`b_k < b_q`, two disjoint cases, so the count is `width(select(a, a, <)) + width(select(a, a, ==) & select(b, b,
<))`: two heads over a and b one-hot, their counts held as numbers, and one staircase over their sum that writes
the rank. Only where the rank is read by selects alone (the sort's `select(rank, indices, ==)`), so the value it
stands for is unchanged. Works on a copy; the interpreter keeps the program as written.
"""
from __future__ import annotations

import copy

from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import (
    ONEHOT,
    SCALAR,
    Affine,
    Aggregate,
    Map,
    Program,
    SelAnd,
    Select,
    SOp,
    Width,
    combos,
    selector_atoms,
)
from hardwire.compiler.lower import readers, walk

ORDER_BUDGET = 4 * VALUE_BUDGET   # most combinations of (a, b) whose order is checked


def lexicographic(m: Map) -> tuple[SOp, SOp] | None:
    """(major, minor) when m = f(x, y) orders every two combinations that can meet as (major, minor) does
    lexicographically, with no ties; checked by sorting the combinations both ways."""
    if type(m) is not Map or len(m.inputs) != 2 or m.inputs[0] is m.inputs[1]:
        return None
    seen = combos(m.inputs)
    if not seen or len(seen) > ORDER_BUDGET or any(v is None or isinstance(v, bool) for c in seen for v in c):
        return None
    try:
        by_value = sorted(seen, key=lambda c: m.fn(*c))
        values = [m.fn(*c) for c in by_value]
        if any(v is None or u >= v for u, v in zip(values, values[1:])):
            return None
        for major, minor in ((0, 1), (1, 0)):
            if by_value == sorted(seen, key=lambda c: (c[major], c[minor])):
                return m.inputs[major], m.inputs[minor]
    except TypeError:   # values that do not compare
        return None
    return None


def read_as_select_side(prog: Program, w: Width, read: dict[int, list[SOp]]) -> list[Select] | None:
    """The selects that read w as a key or query, when nothing else reads it (no map, value or output)."""
    if any(o is w for o in prog.outputs.values()):
        return None
    atoms = []
    for r in read.get(id(w), []):
        if not isinstance(r, (Aggregate, Width)) or isinstance(r, Aggregate) and r.value is w:
            return None
        atoms += [a for a in selector_atoms(r.selector) if a.keys is w or a.queries is w]
    return atoms or None


def split_ranks(prog: Program) -> Program:
    """A copy of prog in which every count of smaller lexicographic keys that only selects read is two counts and a
    staircase over their sum (the module docstring)."""
    prog = copy.deepcopy(prog)
    if prog.loop is not None:
        return prog
    read = readers(prog)   # a split only replaces its own width's reads, so the others' stay as computed here
    for w in walk(prog.roots()):
        sel = getattr(w, "selector", None)
        if not (type(w) is Width and isinstance(sel, Select) and sel.fn is None and sel.pred == "<"
                and sel.keys is sel.queries and w.encoding == ONEHOT):
            continue
        order = lexicographic(sel.keys)
        atoms = read_as_select_side(prog, w, read) if order is not None else None
        if atoms is None:
            continue
        a, b = order
        at = {"line": sel.line, "column": sel.column}
        below = Width(f"{w.label}.major", w.values, SCALAR, w.line, w.column, selector=Select(a, a, "<", **at))
        tied = Width(f"{w.label}.minor", w.values, SCALAR, w.line, w.column,
                     selector=SelAnd(Select(a, a, "==", **at), Select(b, b, "<", **at), **at))
        total = Affine(f"{w.label}.sum", w.values, SCALAR, w.line, w.column, terms=((1, below), (1, tied)))
        rank = Map(w.label, w.values, ONEHOT, w.line, w.column, fn=lambda v: v, inputs=(total,),
                   text=f"{below.label} + {tied.label}")
        for atom in atoms:
            if atom.keys is w:
                atom.keys = rank
            if atom.queries is w:
                atom.queries = rank
    return prog
