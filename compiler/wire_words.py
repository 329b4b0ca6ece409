"""Exact weights for words: hard heads that match bits, and MLPs built from unit steps.

A step [D >= t] of an integer-valued linear form D is two ReLUs, ReLU(2(D-t)+1.5) - ReLU(2(D-t)+0.5):
exactly 0 or 1 while D is within 1/4 of an integer. Every bit of a sum, and every comparison, is a
union of intervals of such a D (for bit j, D sums only the low j+1 bits of each term, so its range
stays a few times 2^(j+1)). A mux copies bits gated by a guard with steps of magnitude ~1: it
re-quantizes, so a register rewritten by a mux carries no error from one pass to the next.
"""
from __future__ import annotations

import math

from hardwire.compiler.check.words import is_copy
from hardwire.compiler.core.sops import WORD, Const, Lin, Select, SOp, WordMux, WordTest, value_key
from hardwire.compiler.layout import BOS, NOT_BOS, Layout

Read = dict[int, float]


def term_read(layout: Layout, x: SOp, j: int | None) -> tuple[Read, int, int]:
    """A linear form congruent to x mod 2^(j+1), with its range: the low j+1 bits of a word, else its
    value (j None: the full signed value)."""
    dims = layout.dims[(id(x), "")]
    if x.encoding == WORD:
        top = x.bits - 1
        small = x.vrange is not None and (j is None or (x.vrange[0] >= 0 and x.vrange[1] < 2 ** (j + 1)))
        if j is not None and j < top and not small:
            return {dims[k]: float(2 ** k) for k in range(j + 1)}, 0, 2 ** (j + 1) - 1
        # its signed value itself: congruent, with the narrow range when one is known
        r = {dims[k]: float(2 ** k) for k in range(top)}
        r[dims[top]] = -float(2 ** top)
        return (r, *x.vrange) if small else (r, -(2 ** top), 2 ** top - 1)
    vals = [v if j is None else v % (2 ** (j + 1)) for v in x.values]
    return {d: float(v) for d, v in zip(dims, vals)}, min(vals), max(vals)


def lin_read(layout: Layout, lin: Lin, j: int | None) -> tuple[Read, int, int, int]:
    """(form, its min, its max, constant) for bit j of a Lin (j None: its full signed value)."""
    total: Read = {}
    lo = hi = 0
    for coef, x in lin.terms:
        r, a, b = term_read(layout, x, j)
        r, a, b = reduced(r, a, b, coef, x.encoding == WORD, j)
        for d, c in r.items():
            total[d] = total.get(d, 0.0) + c
        lo, hi = lo + a, hi + b
    const = lin.const if j is None else lin.const % (2 ** (j + 1))
    return total, lo, hi, const


def reduced(r: Read, a: int, b: int, coef: int, bits: bool, j: int | None) -> tuple[Read, int, int]:
    """coef times a term's read and its range; for bit j, each dim's weight mod 2^(j+1) where that narrows the
    range (still congruent: a dim is 0 or 1). `1 << 11` times a boolean adds 0 to bits 0..10, not a range of
    2^11 intervals to cover. bits: the dims are independent bits (a word), else one-hot (one dim at a time)."""
    scaled = ({d: coef * c for d, c in r.items()}, min(coef * a, coef * b), max(coef * a, coef * b))
    if j is None:
        return scaled
    p = 2 ** (j + 1)
    red = {d: float(int(c) % p) for d, c in scaled[0].items() if int(c) % p}
    if any(c != int(c) for c in scaled[0].values()):
        return scaled
    if bits:
        lo, hi = 0, int(sum(red.values()))
    else:   # one value's dim at a time; a value whose weight reduces to 0 has no dim left (0 is in the range)
        vals = [int(c) for c in red.values()] + ([0] if len(red) < len(r) else [])
        lo, hi = min(vals, default=0), max(vals, default=0)
    return (red, lo, hi) if hi - lo < scaled[2] - scaled[1] else scaled


def add_step(units, read: Read, const: float, t: int, out: Read, big: float, gate: Read | None = None) -> None:
    """Units writing out * [D + const >= t], off at BOS and (if gated) where the gate, a form that is 1 or at most 0,
    is not 1."""
    for shift, sign in ((1.5, 1.0), (0.5, -1.0)):
        r = {d: 2.0 * c for d, c in read.items()}
        r[NOT_BOS] = r.get(NOT_BOS, 0.0) + 2.0 * (const - t) + shift
        r[BOS] = r.get(BOS, 0.0) - big
        if gate is not None:
            r[NOT_BOS] -= big
            for d, c in gate.items():
                r[d] = r.get(d, 0.0) + big * c
        units.add(r, {d: sign * c for d, c in out.items()})


def add_interval(units, read, const, lo, hi, a, b, out, gate=None) -> None:
    """out * [a <= D + const <= b] for D + const known to lie in [lo, hi]."""
    a, b = max(a, lo), min(b, hi)
    if a > b:
        return
    big = 2.0 * (abs(lo) + abs(hi) + abs(a) + abs(b)) + 4.0
    if a > lo:
        add_step(units, read, const, a, out, big, gate)
    elif gate is None:
        units.add({NOT_BOS: 1.0}, dict(out))
    else:
        add_step(units, gate, 0.0, 1, out, 4.0)  # the guard itself, snapped
    if b < hi:
        add_step(units, read, const, b + 1, {d: -c for d, c in out.items()}, big, gate)


def gate_read(layout: Layout, s, i: int) -> Read | None:
    """The form case i of mux s is gated on: its guard's True (or, polarity False, its False) dimension. Polarity
    "first": its guard's True dimension less each earlier guard's, and "none" (an `else`): not_bos less each earlier
    guard's. With 0/1 guards such a form is 1 exactly where this case is the first that holds and at most 0
    elsewhere, whatever the guards are, so a unit gated on it is on exactly there (add_step)."""
    g, pol = s.cases[i][0], s.polarity[i]
    if pol in ("first", "none"):
        form = {NOT_BOS: 1.0} if pol == "none" else {layout.dims[(id(g), "")][g.values.index(True)]: 1.0}
        for h, _ in s.cases[:i]:
            d = layout.dims[(id(h), "")][h.values.index(True)]
            form[d] = form.get(d, 0.0) - 1.0
        return form
    return None if g is None else {layout.dims[(id(g), "")][g.values.index(pol)]: 1.0}


def add_copy(units, src: int | None, gate: Read | None, dst: int) -> None:
    """dst gets the 0/1 value of dim src (None: the constant 1) where the gate is on, re-quantized:
    [src + gate >= 2] with magnitudes about 1, so errors on src or the gate do not pass through."""
    if src is None:
        if gate is None:
            units.add({NOT_BOS: 1.0}, {dst: 1.0})
        else:
            add_step(units, gate, 0.0, 1, {dst: 1.0}, 4.0)
        return
    read = {src: 1.0} if gate is None else {src: 1.0, **{d: c + (1.0 if d == src else 0.0) for d, c in gate.items()}}
    add_step(units, read, 0.0, 1 if gate is None else 2, {dst: 1.0}, 6.0)


def erase(units, dims: list[int]) -> None:
    """Write -x on each dim, exactly: x - (ReLU(x) - ReLU(-x)) = 0, whatever error x carries."""
    for d in dims:
        units.add({d: 1.0}, {d: -1.0})
        units.add({d: -1.0}, {d: 1.0})


def bit_intervals(lo: int, hi: int, j: int):
    """Integers D in [lo, hi] whose bit j is set: D mod 2^(j+1) >= 2^j."""
    p = 2 ** (j + 1)
    for m in range(math.floor(lo / p) - 1, math.floor(hi / p) + 1):
        yield m * p + p // 2, m * p + p - 1


def mux(s: WordMux, layout: Layout, units) -> None:
    """The word s: each case's bits gated by its (exclusive) guard. A commit also erases the old value."""
    target = s.target if s.target is not None else s
    out = layout.dims[(id(target), "")]
    n = s.bits
    for i, (_, lin) in enumerate(s.cases):
        gate = gate_read(layout, s, i)
        pure = is_copy(lin) and lin.terms and lin.terms[0][1].bits == n
        for j in range(n):
            if not lin.terms:  # a constant: its set bits, gated
                if (lin.const >> j) & 1:
                    add_copy(units, None, gate, out[j])
            elif pure:  # a copy of a word, bit by bit
                add_copy(units, layout.dims[(id(lin.terms[0][1]), "")][j], gate, out[j])
            else:
                read, lo, hi, const = lin_read(layout, lin, j)
                for a, b in bit_intervals(lo + const, hi + const, j):
                    add_interval(units, read, const, lo + const, hi + const, a, b, {out[j]: 1.0}, gate)
    if s.target is not None:  # a commit: the register's old value goes
        erase(units, out)


def onehot_mux(s, layout: Layout, units) -> None:
    """A one-hot register rewritten from exclusive cases: [x_v + guard >= 2] into v's dimension."""
    out = layout.dims[(id(s.target), "")]
    values = s.target.values
    for i, (_, val) in enumerate(s.cases):
        gate = gate_read(layout, s, i)
        for v, dim in zip(values, out):
            if not isinstance(val, SOp) or isinstance(val, Const):
                if value_key(val.value if isinstance(val, Const) else val) == value_key(v):  # 0 is not false
                    add_copy(units, None, gate, dim)
            elif val.holds(v):
                add_copy(units, layout.dims[(id(val), "")][val.value_index(v)], gate, dim)
    erase(units, out)


def truth_intervals(op: str, c: int, lo: int, hi: int, n: int, wrapped: bool):
    """Integers S in [lo, hi] with op(value, c), value = S wrapped to n bits (or S itself)."""
    windows = []
    if wrapped:
        p, half = 2 ** n, 2 ** (n - 1)
        for m in range(math.floor((lo + half) / p), math.floor((hi + half) / p) + 1):
            windows.append((m * p - half, m * p + half - 1, m * p))
    else:
        windows.append((lo, hi, 0))
    for wlo, whi, off in windows:
        t = c + off
        spans = {"==": [(t, t)], "!=": [(wlo, t - 1), (t + 1, whi)], "<": [(wlo, t - 1)], "<=": [(wlo, t)],
                 ">": [(t + 1, whi)], ">=": [(t, whi)]}[op]
        for a, b in spans:
            a, b = max(a, wlo, lo), min(b, whi, hi)
            if a <= b:
                yield a, b


def test(s: WordTest, layout: Layout, units) -> None:
    """A boolean from a comparison of a Lin: true on a union of intervals of its integer value."""
    dims = layout.dims[(id(s), "")]
    t_dim, f_dim = dims[s.values.index(True)], dims[s.values.index(False)]
    read, lo, hi, const = lin_read(layout, s.lin, None)
    units.add({NOT_BOS: 1.0}, {f_dim: 1.0})
    for a, b in truth_intervals(s.op, s.const, lo + const, hi + const, s.bits, s.wrapped):
        add_interval(units, read, const, lo + const, hi + const, a, b, {t_dim: 1.0, f_dim: -1.0})


def is_word_select(sel) -> bool:
    return isinstance(sel, Select) and sel.keys.encoding == WORD


def word_score_columns(sel: Select, layout: Layout):
    """Match every bit: score sum_j (2q_j - 1)(2k_j - 1) is n on a match, <= n-2 otherwise; BOS gets n-1,
    so the gap is 1 whatever the length. Columns as in wire.score_columns."""
    n = sel.queries.bits
    qd, kd = layout.dims[(id(sel.queries), "")], layout.dims[(id(sel.keys), "")]
    cols_q = [{qd[j]: 2.0, NOT_BOS: -1.0} for j in range(n)] + [{NOT_BOS: n - 1.0, BOS: n + 1.0}]
    cols_k = [{kd[j]: 2.0, NOT_BOS: -1.0} for j in range(n)] + [{BOS: 1.0}]
    return cols_q, cols_k


def pick_columns(cols_q: list[Read], cols_k: list[Read], pick: str, max_len: int, index: int):
    """latest/earliest over a word select: word_score_columns' query columns times G/2, G = 2(max_len+1), and the
    key's index added (latest) or subtracted (earliest). A match scores nG/2 +- i, BOS (n-1)G/2, a mismatch at
    most (n-2)G/2 +- i: the last (first) match wins by 1, and BOS sits at least 1 from both sides."""
    half = float(max_len + 1)
    cols_q = [{dim: c * half for dim, c in col.items()} for col in cols_q] + [{NOT_BOS: 1.0}]
    cols_k = list(cols_k) + [{index: 1.0 if pick == "latest" else -1.0}]
    return cols_q, cols_k
