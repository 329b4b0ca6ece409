"""Selector combination: a `|` across different keys or queries, which no sum of score terms computes, becomes one
select whose key is the selects' keys as one tuple value, whose query is their queries as another, and whose truth
table is the whole selector. Its cost is the product of the value sets, refused over a budget.

Works on a copy of the program (like fuse.py) and only where a selector needs it, so every other program is
compiled exactly as before; the interpreter keeps the selector as written.
"""
from __future__ import annotations

import copy
import itertools
import math

from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import (
    ONEHOT,
    WORD,
    Aggregate,
    Const,
    Map,
    Program,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Width,
    atom_holds,
    selector_atoms,
    sort_values,
)
from hardwire.compiler.lower import walk
from hardwire.compiler.wire import terms_of

PAIR_BUDGET = VALUE_BUDGET  # largest (combined key values) x (combined query values) table one head spells out


def needs_combining(sel) -> bool:
    """A selector that one head's sum of terms cannot compute (and that holds no word select, which is refused
    when wired)."""
    atoms = selector_atoms(sel)
    if any(WORD in (a.keys.encoding, a.queries.encoding) for a in atoms):
        return False
    return terms_of(sel) is None


def distinct_sides(atoms: list[Select], side: str) -> list[SOp]:
    """The different non-constant values on one side of the atoms, in order of appearance."""
    out: list[SOp] = []
    for a in atoms:
        s = getattr(a, side)
        if not isinstance(s, Const) and not any(s is t for t in out):
            out.append(s)
    return out


def tuple_value(parts: list[SOp], line: int, column: int) -> SOp:
    """One value holding every part: the part itself when there is one, a tuple map of them otherwise (its
    components may be none: each select inside decides what none means for it)."""
    if not parts:
        return Const("()", ((),), ONEHOT, value=())
    if len(parts) == 1:
        return parts[0]
    text = f"({', '.join(p.label for p in parts)})"
    values = sort_values(itertools.product(*(p.values for p in parts)))
    return Map("_" + text, values, ONEHOT, line, column, fn=lambda *vs: tuple(vs), inputs=tuple(parts), text=text)


def getter(parts: list[SOp], s: SOp):
    """How to read s's value from its side's combined value (a constant reads its own value)."""
    if isinstance(s, Const):
        return lambda combined, v=s.value: v
    if len(parts) == 1:
        return lambda combined: combined
    i = next(j for j, p in enumerate(parts) if p is s)
    return lambda combined, i=i: combined[i]


def evaluator(sel, keys: list[SOp], queries: list[SOp]):
    """The selector as a function of (combined key value, combined query value), reading no SOp identities."""
    if isinstance(sel, Select):
        gk, gq = getter(keys, sel.keys), getter(queries, sel.queries)
        return lambda k, q, a=sel: atom_holds(a, gk(k), gq(q))
    if isinstance(sel, SelNot):
        inner = evaluator(sel.inner, keys, queries)
        return lambda k, q: not inner(k, q)
    left, right = evaluator(sel.left, keys, queries), evaluator(sel.right, keys, queries)
    if isinstance(sel, SelAnd):
        return lambda k, q: left(k, q) and right(k, q)
    return lambda k, q: left(k, q) or right(k, q)


def written(sel) -> str:
    """The selector in the language's words, for the combined select's text."""
    if isinstance(sel, Select):
        return f"select({sel.keys.label}, {sel.queries.label}, {sel.pred})"
    if isinstance(sel, SelNot):
        return f"!({written(sel.inner)})"
    op = " & " if isinstance(sel, SelAnd) else " | "
    return f"({written(sel.left)}{op}{written(sel.right)})"


def sizes(parts: list[SOp]) -> str:
    """`tokens (3 values) x indices (8 values)`: what a combined side multiplies."""
    return " x ".join(f"{p.label.lstrip('_') or 'a value'} ({len(p.values):,} values)" for p in parts)


def combined(sel, reader: SOp, file: str | None) -> Select:
    """sel as one select over tuple keys and queries; refused (at the selector's line:column) over PAIR_BUDGET."""
    atoms = selector_atoms(sel)
    keys, queries = distinct_sides(atoms, "keys"), distinct_sides(atoms, "queries")
    line, column = (sel.line, sel.column) if getattr(sel, "line", 0) else (reader.line, reader.column)
    nk = math.prod(len(k.values) for k in keys)
    nq = math.prod(len(q.values) for q in queries)
    if nk * nq > PAIR_BUDGET:
        raise HardwireError(f"this selector has `|` between selects on different keys or queries (`!(a & b)` is "
                            f"`!a | !b`), which compiles as one select over the keys combined, {sizes(keys) or '()'}"
                            f" = {nk:,} values, and the queries combined, {sizes(queries) or '()'} = {nq:,} values: "
                            f"a table of {nk * nq:,} pairs, over the budget of {PAIR_BUDGET:,}; narrow the value "
                            "sets, or write it with `|` only between selects that share their keys and queries",
                            file, line or None, column or None)
    kt, qt = tuple_value(keys, line, column), tuple_value(queries, line, column)
    return Select(kt, qt, written(sel), fn=evaluator(sel, keys, queries), line=line, column=column, origin=sel)


def rewrite(sel, reader: SOp, file: str | None):
    """sel with only what needs it combined: the terms of a conjunction that sum as they are stay apart (so the
    table multiplies the value sets of the `|` alone), `!` is pushed through `|` and `!!` dropped first."""
    if terms_of(sel) is not None:
        return sel
    if isinstance(sel, SelAnd):
        return SelAnd(rewrite(sel.left, reader, file), rewrite(sel.right, reader, file), sel.line, sel.column)
    if isinstance(sel, SelNot) and isinstance(sel.inner, SelNot):
        return rewrite(sel.inner.inner, reader, file)
    if isinstance(sel, SelNot) and isinstance(sel.inner, SelOr):
        inner = sel.inner
        return rewrite(SelAnd(SelNot(inner.left), SelNot(inner.right), sel.line, sel.column), reader, file)
    return combined(sel, reader, file)


def combine_selectors(prog: Program) -> Program:
    """Every selector that needs it rewritten into one select, on a copy of prog (prog itself when none does)."""
    if not any(isinstance(s, (Aggregate, Width)) and needs_combining(s.selector) for s in walk(prog.roots())):
        return prog
    prog = copy.deepcopy(prog)
    done: dict[int, object] = {}  # a selector read by several heads is combined once
    for s in walk(prog.roots()):
        if isinstance(s, (Aggregate, Width)) and needs_combining(s.selector):
            if id(s.selector) not in done:
                done[id(s.selector)] = rewrite(s.selector, s, prog.file)
            s.selector = done[id(s.selector)]
    return prog
