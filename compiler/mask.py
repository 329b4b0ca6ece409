"""Causal masking: a program whose every selector looks only backwards (never selects a key after its query)
compiles with a causal mask, and then a select of positions that holds on every key up to the query, such as
`select(indices, indices, <=)`, is `true`: it reads nothing, so `indices` need not be one-hot for it.

A prefix select costs one column per position on both sides (O(max_len) dims and O(max_len^2) weights), and no
low-rank score can select a prefix with equal weights: the keys of each prefix would have to lie on one
hyperplane that the next key leaves. The mask does it for free. The model's answers are the same: the mask hides
only keys that no selector of the program selects.

Works on a copy of the program (like fuse.py); the interpreter keeps the program as written.
"""
from __future__ import annotations

import copy

from hardwire.compiler.core.sops import (
    Aggregate,
    Indices,
    Program,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    Width,
    atom_holds,
    selector_atoms,
)
from hardwire.compiler.lower import feature_of, walk
from hardwire.compiler.wire import feature_value

PAIRS_BUDGET = 1 << 16   # most (key position, query position) pairs a select of positions is checked on


def positional(sel: Select) -> bool:
    """A select whose keys and queries both depend on the position only (so its truth is a table of positions)."""
    return all(isinstance(s, Indices) or feature_of(s) == "position" for s in (sel.keys, sel.queries))


def table(sel: Select, n: int) -> tuple[bool, bool, bool]:
    """(holds on some key after its query, on every key after its query, on every key up to its query), over
    positions 0..n-1."""
    keys = [feature_value(sel.keys, index=i) for i in range(n)]
    queries = [feature_value(sel.queries, index=i) for i in range(n)]
    some, every, behind = False, True, True
    for q in range(n):
        for k in range(n):
            holds = atom_holds(sel, keys[k], queries[q])
            if k > q:
                some, every = some or holds, every and holds
            else:
                behind = behind and holds
    return some, every, behind


def atom_facts(sel: Select, n: int, memo: dict) -> tuple[bool, bool, bool]:
    """table(sel) for a select of positions (memoized); for any other select nothing is known: (True, False,
    False)."""
    if id(sel) not in memo:
        memo[id(sel)] = table(sel, n) if positional(sel) and n * n <= PAIRS_BUDGET else (True, False, False)
    return memo[id(sel)]


def facts(sel, n: int, memo: dict) -> tuple[bool, bool]:
    """(never holds on a key after its query, always does) for a selector, at any value of its inputs."""
    if isinstance(sel, Select):
        some, every, _ = atom_facts(sel, n, memo)
        return not some, every
    if isinstance(sel, SelNot):
        never, always = facts(sel.inner, n, memo)
        return always, never
    (ln, la), (rn, ra) = facts(sel.left, n, memo), facts(sel.right, n, memo)
    if isinstance(sel, SelAnd):
        return ln or rn, la and ra
    return ln and rn, la or ra


def looks_back(sel, n: int, memo: dict | None = None) -> bool:
    """Can the selector never select a key after its query, at any value of its inputs?"""
    return facts(sel, n, {} if memo is None else memo)[0]


def unmasked(sel, n: int, memo: dict):
    """sel under a causal mask: each select of positions that holds on every key up to its query is `true`, and
    `true & x` is x."""
    if isinstance(sel, Select):
        if atom_facts(sel, n, memo)[2]:
            return Select(sel.keys, sel.queries, "true", line=sel.line, column=sel.column, origin=sel)
        return sel
    if isinstance(sel, SelNot):
        return SelNot(unmasked(sel.inner, n, memo), sel.line, sel.column)
    left, right = unmasked(sel.left, n, memo), unmasked(sel.right, n, memo)
    if isinstance(sel, SelAnd):
        for a, b in ((left, right), (right, left)):
            if isinstance(a, Select) and a.fn is None and a.pred == "true":
                return b
        return SelAnd(left, right, sel.line, sel.column)
    return SelOr(left, right, sel.line, sel.column)


def readers(prog: Program) -> list:
    """Every head of the program: its aggregates and widths."""
    return [s for s in walk(prog.roots()) if isinstance(s, (Aggregate, Width))]


def mask_causal(prog: Program) -> Program:
    """prog with a causal mask where that simplifies a selector and changes no answer (a copy; prog itself when it
    does not): a program already `causal`, or one with no loop whose every selector looks back."""
    if prog.loop is not None:
        return prog
    heads = readers(prog)
    memo: dict = {}
    if not prog.causal and not all(looks_back(s.selector, prog.max_len, memo) for s in heads):
        return prog
    atoms = [a for s in heads for a in selector_atoms(s.selector) if not (a.fn is None and a.pred == "true")]
    if not any(atom_facts(a, prog.max_len, memo)[2] for a in atoms):   # no select becomes `true`: nothing to gain
        return prog
    copies: dict = {}
    prog = copy.deepcopy(prog, copies)
    memo = {id(copies[k]): v for k, v in memo.items() if k in copies}   # the tables, for the copied selects
    done: dict = {}   # a selector read by several heads stays one object (encode.one_mean compares them)
    for s in readers(prog):
        if id(s.selector) not in done:
            done[id(s.selector)] = unmasked(s.selector, prog.max_len, memo)
        s.selector = done[id(s.selector)]
    prog.causal = True
    return prog
