"""Words: `bits`-bit two's complement integers held as bits, with the few operations that compile exactly.

A word expression stays symbolic (a `Lin`, or `Cases` for an `if`) until something needs it in the
residual stream; then one MLP materializes it (`WordMux`). Comparisons read the Lin directly (`WordTest`).
Anything else on a word (a lambda, division) would need a table over 2^bits values and is refused.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

from hardwire.compiler.check.messages import called, shown, shown_set
from hardwire.compiler.core.sops import ONEHOT, WORD, Const, Lin, OneHotMux, SOp, WordMux, WordTest, wrap

COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}
FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class Cases:
    """`if g1 then e1 else if g2 then e2 else e3`: ((guard, Lin), ...), the last guard None."""
    cases: tuple


def is_word(v) -> bool:
    return isinstance(v, (Lin, Cases)) or (isinstance(v, SOp) and v.encoding == WORD)


def lin_value(lin: Lin, env: dict) -> int:
    """The unwrapped integer sum(coef * x) + const, given each term's value by id."""
    return sum(c * env[id(x)] for c, x in lin.terms) + lin.const


def collect(items) -> list[SOp]:
    """Distinct SOps in first-seen order."""
    out: list[SOp] = []
    for s in items:
        if s is not None and not any(s is o for o in out):
            out.append(s)
    return out


class WordOps:
    """Typing and construction of word values; mixed into the Elaborator (needs err, make_map, prog)."""

    def bits(self, node) -> int:
        if not self.prog.word_bits:
            raise self.err("words need a width: add a header line like `word 16`", node)
        return self.prog.word_bits

    def word_const(self, v: int, node) -> Const:
        n = self.bits(node)
        if wrap(v, n) != v:
            raise self.err(f"{v} is outside the {n}-bit word range [{-(1 << (n - 1))}, {(1 << (n - 1)) - 1}]", node)
        return Const(repr(v), (), WORD, bits=n, vrange=(v, v), value=v)

    def lin_of(self, v, node) -> Lin:
        """A word view of v: an int, a word, an `if`, or a one-hot integer value."""
        if isinstance(v, Lin):
            return v
        if isinstance(v, Cases):
            return Lin(((1, self.word_mux(v.cases, node)),), 0)
        if isinstance(v, bool) or not isinstance(v, (int, SOp)):
            raise self.err(f"{shown(v)} is not a number, so it cannot be a word", node)
        if isinstance(v, int):
            return Lin((), v)
        if v.encoding == WORD:
            if isinstance(v, Const):
                return Lin((), v.value)
            return Lin(((1, v),), 0)
        if v.encoding != ONEHOT:
            raise self.err(f"{called(v)} is a scalar mean; words mix only with one-hot integers", node)
        n = self.bits(node)
        bad = [x for x in v.values if not isinstance(x, int) or wrap(x, n) != x]   # a boolean counts 0 or 1
        if bad:
            raise self.err(f"{called(v)} can be {shown(bad[0])}, which is not an integer in the {n}-bit word range",
                           node)
        from hardwire.compiler.lower import feature_of  # a function of tokens or indices alone is embedded as bits
        if feature_of(v) in ("token", "position"):
            views = self.__dict__.setdefault("_word_views", {})
            if id(v) not in views:
                views[id(v)] = (v, self.word_mux(((None, Lin(((1, v),), 0)),), node))
                views[id(v)][1].label = f"word({v.label})"
                views[id(v)][1].vrange = (min(v.values), max(v.values))
            return Lin(((1, views[id(v)][1]),), 0)
        return Lin(((1, v),), 0)

    def word_sop(self, v, node) -> SOp:
        """v held in the residual as bits (one MLP unless it already is)."""
        lin = self.lin_of(v, node)
        if len(lin.terms) == 1 and lin.const == 0 and lin.terms[0][0] == 1 and lin.terms[0][1].encoding == WORD:
            return lin.terms[0][1]
        if not lin.terms:
            return self.word_const(wrap(lin.const, self.bits(node)), node)
        return self.word_mux(((None, lin),), node)

    def word_arith(self, op: str, args: list, node):
        if op == "neg":
            a = self.lin_of(args[0], node)
            return Lin(tuple((-c, x) for c, x in a.terms), -a.const)
        if op in ("+", "-"):
            a, b = (self.lin_of(x, node) for x in args)
            s = 1 if op == "+" else -1
            return Lin(a.terms + tuple((s * c, x) for c, x in b.terms), a.const + s * b.const)
        if op == "*":
            k = [x for x in args if isinstance(x, int) and not isinstance(x, bool)]
            if not k:
                raise self.err("a word can be multiplied only by an integer constant", node)
            a = self.lin_of(args[1] if args[0] is k[0] else args[0], node)
            return Lin(tuple((k[0] * c, x) for c, x in a.terms), k[0] * a.const)
        if op in COMPARE:
            return self.word_compare(op, *args, node=node)
        raise self.err(f"operator {'-' if op == 'neg' else op!r} is not defined on words (words support + - * by a "
                       "constant, comparisons and if)", node)

    def word_compare(self, op: str, a, b, node) -> WordTest:
        la, lb = self.lin_of(a, node), self.lin_of(b, node)
        if not la.terms and not lb.terms:
            raise self.err("comparison of two constants", node)
        if not lb.terms:
            return self.word_test(la, op, lb.const, True, node)
        if not la.terms:
            return self.word_test(lb, FLIP[op], la.const, True, node)
        # two values: compare their (wrapped) values exactly as integers, with no wrap of the difference
        xa, xb = self.word_sop(la, node), self.word_sop(lb, node)
        return self.word_test(Lin(((1, xa), (-1, xb)), 0), op, 0, False, node)

    def word_test(self, lin: Lin, op: str, const: int, wrapped: bool, node) -> WordTest:
        n = self.bits(node)
        inputs = collect(x for _, x in lin.terms)
        cmp = COMPARE[op]

        def fn(*vals):
            env = {id(x): v for x, v in zip(inputs, vals)}
            if any(v is None for v in vals):
                return None
            s = lin_value(lin, env)
            return cmp(wrap(s, n) if wrapped else s, const)
        m = node.meta
        return WordTest("_test", (False, True), ONEHOT, m.line, m.column, n, fn=fn, inputs=tuple(inputs),
                        text=f"word {op} {const}", lin=lin, op=op, const=const, wrapped=wrapped)

    def guard_of(self, c, node) -> SOp:
        """A mux guard: a one-hot boolean that can be both true and false, and never none."""
        if not isinstance(c, SOp) or c.encoding != ONEHOT or \
                not all(isinstance(v, bool) for v in c.values if v is not None):
            raise self.err("the condition of an `if` on words must be a boolean value (a comparison, not a number)",
                           node)
        if None in c.values:
            raise self.err("the condition of an `if` on words can be none (an empty aggregate); wrap it in "
                           "default(..., false)", node)
        if len(c.values) < 2:
            raise self.err(f"the condition of an `if` on words is always {c.values[0]}; drop the `if`", node)
        return c

    def word_if(self, c, x, y, node) -> Cases:
        if isinstance(c, SOp) and len(c.values) == 1 and isinstance(c.values[0], bool):
            return x if c.values[0] else y  # a condition that never changes: no mux
        g = self.guard_of(c, node)
        rest = y.cases if isinstance(y, Cases) else ((None, self.lin_of(y, node)),)
        return Cases(((g, self.lin_of(x, node)),) + rest)

    def word_mux(self, cases: tuple, node, target: SOp | None = None, bits: int | None = None) -> WordMux:
        """Cases as one value; guards are made exclusive (each case: its guard and no earlier one).

        A commit (target set) only copies words and constants, so that it re-quantizes the register:
        any arithmetic in its cases is materialized first, one MLP earlier.
        """
        n = bits or self.bits(node)
        if target is not None:
            cases = tuple((g, lin if is_copy(lin) else Lin(((1, self.word_sop(lin, node)),), 0)) for g, lin in cases)
        guards = [g for g, _ in cases]
        exclusive, polarity = self.exclusive_guards(guards, node)
        inputs = collect(list(guards) + [x for _, lin in cases for _, x in lin.terms])
        ranges = [lin_range(lin) for _, lin in cases]
        if polarity[-1] == "none" and same_lin(cases[-1][1], guards[0].lin):   # `else x` after tests of x itself
            ranges[-1] = between(guards[:-1], n, ranges[-1])

        def fn(*vals):
            env = {id(x): v for x, v in zip(inputs, vals)}
            for g, lin in cases:
                if g is None or env[id(g)] is True:
                    if any(env[id(x)] is None for _, x in lin.terms):
                        return None
                    return wrap(lin_value(lin, env), n)
            return 0
        m = node.meta
        label = target.label if target is not None else "_word"
        vrange = None
        if target is None and all(r is not None and -(1 << (n - 1)) <= r[0] and r[1] < (1 << (n - 1)) for r in ranges):
            vrange = (min(r[0] for r in ranges), max(r[1] for r in ranges))
        return WordMux(label, (), WORD, m.line, m.column, n, vrange, fn=fn, inputs=tuple(inputs), text="word",
                       cases=tuple((g, lin) for g, (_, lin) in zip(exclusive, cases)), target=target,
                       polarity=tuple(polarity))


    def exclusive_guards(self, guards: list, node) -> tuple[list, list]:
        """Case i's guard becomes `guards[i] and no earlier guard`, as a boolean (and which dimension). Guards that
        are comparisons of one word which cannot hold together (x < lo, x > hi) stay as they are: each later case
        is gated on its own less the earlier ones (polarity "first"), a final `else` on none of them ("none"),
        linear forms of their dimensions, so the mux needs no block of guards (wire_words.gate_read)."""
        if len(guards) > 2 and guards[-1] is None and disjoint_tests(guards[:-1]):
            return list(guards), [True] + ["first"] * (len(guards) - 2) + ["none"]
        exclusive, polarity = [], []
        for i, g in enumerate(guards):
            before = [p for p in guards[:i] if p is not None]
            if not before:
                exclusive.append(g)
            elif g is None and len(before) == 1 and None not in before[0].values:
                exclusive.append(before[0])  # `else` after one test: that test's False dimension
                polarity.append(False)
                continue
            else:
                own = [] if g is None else [g]
                exclusive.append(self.make_map(first_true(len(before)), before + own, "first true case", node))
            polarity.append(True)
        return exclusive, polarity

    def onehot_mux(self, cases: tuple, node, target: SOp) -> OneHotMux:
        """A commit of a one-hot register: each case a one-hot value (or a constant) in its value set."""
        for _, v in cases:
            vals = v.values if isinstance(v, SOp) else (v,)
            extra = [x for x in vals if not target.holds(x)]
            if extra:
                raise self.err(f"register {target.label!r} may only hold {shown_set(target.values, 12)}, but this "
                               f"update can give {shown(extra[0])}", node)
        guards = [g for g, _ in cases]
        exclusive, polarity = self.exclusive_guards(guards, node)
        inputs = collect(list(guards) + [v for _, v in cases if isinstance(v, SOp)])

        def fn(*vals):
            env = {id(x): v for x, v in zip(inputs, vals)}
            for g, v in cases:
                if g is None or env[id(g)] is True:
                    return env[id(v)] if isinstance(v, SOp) else v
            return None
        m = node.meta
        return OneHotMux(target.label, target.values, target.encoding, m.line, m.column, fn=fn,
                         inputs=tuple(inputs), text="mux", cases=tuple((g, v) for g, (_, v) in zip(exclusive, cases)),
                         target=target, polarity=tuple(polarity))


def lin_range(lin: Lin) -> tuple | None:
    """(min, max) of a Lin's unwrapped value when every term's range is known, else None."""
    lo = hi = lin.const
    for c, x in lin.terms:
        r = x.vrange if x.encoding == WORD else (min(x.values), max(x.values))
        if r is None:
            return None
        lo, hi = lo + min(c * r[0], c * r[1]), hi + max(c * r[0], c * r[1])
    return lo, hi


def same_lin(a: Lin, b: Lin) -> bool:
    """The same linear form of the same values (so the same word wherever it is evaluated)."""
    return a.const == b.const and tuple((c, id(x)) for c, x in a.terms) == tuple((c, id(x)) for c, x in b.terms)


def half_lines(guards: list) -> tuple[list[int], list[int]]:
    """The bounds of comparisons against constants: u for `value <= u` (<, <=), l for `value >= l` (>, >=)."""
    below = [g.const - (g.op == "<") for g in guards if g.op in ("<", "<=")]
    above = [g.const + (g.op == ">") for g in guards if g.op in (">", ">=")]
    return below, above


def disjoint_tests(guards: list) -> bool:
    """Whether the guards are comparisons <, <=, >, >= of one Lin with constants (of its wrapped value) whose truth
    sets are disjoint, so at most one holds anywhere: a half-line of the value in each direction at most."""
    if not all(isinstance(g, WordTest) and g.op in ("<", "<=", ">", ">=") and g.wrapped for g in guards):
        return False
    if not all(same_lin(g.lin, guards[0].lin) for g in guards):
        return False
    below, above = half_lines(guards)
    return len(below) <= 1 and len(above) <= 1 and (not below or not above or below[0] < above[0])


def between(guards: list, n: int, known: tuple | None) -> tuple | None:
    """The range of a word x in the `else` of `if x < lo then .. else if x > hi then .. else x`: the wrapped value
    where no guard holds, [lo, hi] (within x's own range when that is known)."""
    below, above = half_lines(guards)
    lo = below[0] + 1 if below else -(1 << (n - 1))
    hi = above[0] - 1 if above else (1 << (n - 1)) - 1
    if known is not None and -(1 << (n - 1)) <= known[0] and known[1] < (1 << (n - 1)):
        lo, hi = max(lo, known[0]), min(hi, known[1])
    return (lo, hi) if lo <= hi else None


def first_true(k: int):
    """Guard of a case after k earlier guards: none of them true, and its own (if any) true."""
    return lambda *v: all(x is not True for x in v[:k]) and (len(v) == k or v[k] is True)


def is_copy(lin: Lin) -> bool:
    """A constant, or one word as it is: what a mux copies without arithmetic."""
    return not lin.terms or (len(lin.terms) == 1 and lin.const == 0 and lin.terms[0][0] == 1
                             and lin.terms[0][1].encoding == WORD)
