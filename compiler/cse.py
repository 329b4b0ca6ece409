"""Common subexpressions: values that compute the same thing are one value, so `indices + 1` written twice is one
lookup and two equal selects over equal values are one head.

Two values are the same when they are the same kind of node over the same (already merged) inputs and, for a
map or a custom predicate, the same table over every combination of input values that can meet (compared by
value, so two lambdas written differently but equal on the value sets merge too). Readers are pointed at the
first; the others are no longer reached, and two outputs of one value share its dims (as when a program names
one value twice). A loop and words are left as they are (a word expression is symbolic until something holds it).

Works on a copy of the program (like fuse.py); the interpreter keeps the program as written.
"""
from __future__ import annotations

import copy
import itertools
import math

from hardwire.compiler.core.sops import (
    WORD,
    Affine,
    Aggregate,
    Const,
    Map,
    Norm,
    Program,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Width,
    combos,
    value_key,
)
from hardwire.compiler.lower import walk

TABLE_BUDGET = 4096   # most input combinations a map's (or predicate's) table is compared over


def table(fn, inputs: list[tuple]) -> tuple | None:
    """fn's values over the given argument tuples, by value_key, or None when that is too many or fn fails."""
    if len(inputs) > TABLE_BUDGET:
        return None
    try:
        return tuple(value_key(fn(*args)) for args in inputs)
    except Exception:   # a function undefined somewhere the checker never evaluates it: not compared
        return None


def values_key(s: SOp) -> tuple:
    return (type(s).__name__, s.encoding, tuple(value_key(v) for v in s.values))


class Merger:
    """The canonical value of every value seen so far, by structural key."""

    def __init__(self):
        self.canon: dict[int, SOp] = {}    # id -> its canonical value
        self.by_key: dict[tuple, SOp] = {}
        self.sels: dict[int, tuple] = {}   # id of a selector as written -> (merged selector, key)
        self.sel_by_key: dict[tuple, object] = {}

    def of(self, s: SOp) -> SOp:
        return self.canon.get(id(s), s)

    def selector(self, sel):
        """sel with its selects' keys and queries merged (the same object when nothing changes, and one new object
        per selector however many heads read it: encode.one_mean compares selectors by identity), and its
        structural key (None: not comparable)."""
        if id(sel) not in self.sels:
            out, key = self._selector(sel)
            if key is not None:   # equal selectors written twice: one object, so equal heads are found equal
                out = self.sel_by_key.setdefault(key, out)
            self.sels[id(sel)] = (out, key)
        return self.sels[id(sel)]

    def _selector(self, sel):
        if isinstance(sel, Select):
            k, q = self.of(sel.keys), self.of(sel.queries)
            out = sel
            if k is not sel.keys or q is not sel.queries:
                out = copy.copy(sel)
                out.keys, out.queries = k, q
            fn_key = None
            if sel.fn is not None:
                fn_key = table(sel.fn, list(itertools.product(k.values, q.values)))
                if fn_key is None:
                    return out, None
            return out, ("select", id(k), id(q), sel.pred if sel.fn is None else "fn", fn_key)
        if isinstance(sel, SelNot):
            inner, key = self.selector(sel.inner)
            out = sel if inner is sel.inner else SelNot(inner, sel.line, sel.column)
            return out, None if key is None else ("not", key)
        (left, lk), (right, rk) = self.selector(sel.left), self.selector(sel.right)
        kind = SelAnd if isinstance(sel, SelAnd) else SelOr
        out = sel if (left is sel.left and right is sel.right) else kind(left, right, sel.line, sel.column)
        return out, None if lk is None or rk is None else (kind.__name__, lk, rk)

    def key(self, s: SOp) -> tuple | None:
        """s's inputs merged in place; its structural key, or None for what is never merged."""
        if s.encoding == WORD:
            return None
        if isinstance(s, Const):
            return values_key(s) + (value_key(s.value),)
        if type(s) is Map:
            merged = [self.of(i) for i in s.inputs]
            unique = list({id(i): i for i in merged}.values())
            if len(unique) < len(merged):   # `if x then m1 else m2` with m1 = m2: a lookup over (x, m), not (x, m, m)
                at = [next(j for j, u in enumerate(unique) if u is i) for i in merged]
                s.fn = lambda *vs, f=s.fn, at=tuple(at): f(*(vs[j] for j in at))
            s.inputs = tuple(unique)
            t = table(s.fn, combos(s.inputs)) if math.prod(len(i.values) for i in s.inputs) <= TABLE_BUDGET else None
            return None if t is None else values_key(s) + (tuple(id(i) for i in s.inputs), t)
        if isinstance(s, Affine):
            s.terms = tuple((c, self.of(x)) for c, x in s.terms)
            return values_key(s) + (tuple((c, id(x)) for c, x in s.terms), s.const)
        if isinstance(s, Norm):
            s.x = self.of(s.x)
            return values_key(s) + (id(s.x), s.eps)
        if type(s) in (Aggregate, Width):
            s.selector, sk = self.selector(s.selector)
            if isinstance(s, Aggregate):
                s.value = self.of(s.value)
                return None if sk is None else values_key(s) + (sk, id(s.value), s.pick)
            return None if sk is None else values_key(s) + (sk,)
        return None

    def visit(self, s: SOp) -> None:
        k = self.key(s)
        if k is None:
            return
        first = self.by_key.setdefault(k, s)
        if first is not s:
            self.canon[id(s)] = first


def merge_common(prog: Program) -> Program:
    """A copy of prog in which equal values are one (prog itself when it has a loop)."""
    if prog.loop is not None:
        return prog
    prog = copy.deepcopy(prog)
    m = Merger()
    for s in walk(prog.roots()):
        m.visit(s)
    prog.outputs = {name: m.of(s) for name, s in prog.outputs.items()}   # two names may share one value's dims
    return prog
