"""Encoding choice: a value gets the narrowest residual encoding that all of its readers can use.

Long: one stage whose rules each rewrite one pattern and share its reading of readers and value sets; each rule
is a section below, in the order choose_encodings applies them.

Works on a copy of the program, like fuse.py; the interpreter keeps the program as written. Each rule keeps
what the program computes:

- a `width` that only outputs read is held as a scalar (1 dimension, its count) instead of one-hot (max_len + 1
  dimensions); its staircase writes one dimension per step, and the output decodes to the nearest count;
- the value at index `length - 1` is the latest key of a `true` select (`last_positions`): no `length` at all;
- a one-hot map's values are recomputed from its inputs' (`narrow_values`): a `none` that cannot reach it is
  no dimension;
- a linear query of `aggregate(select(indices, q, ==), x)` that always names a position is read as a number
  by wire_numeric.py's head, with no block and no dimensions of its own (`linear_queries`; its MLP-made inputs
  snapped in place first);
- a linear output of means over one selector is one mean of the combination (`one_mean`);
- an equality with one embedded value's linear form, or a custom predicate that is one, is read by the same
  head with BOS at q^2 - 1/2, so the query may miss (`one_value_query`), and `indices` or a width that only such
  heads read holds x and x^2 (`numbers`);
- a boolean that maps, aggregates' values and outputs read is one 0/1 dimension (`flags`): its `true`
  indicator is the dim, its `false` indicator not_bos minus it (Layout.hot), so a lookup reads it as one-hot;
- a one-hot map or aggregate that only outputs read is one dimension holding its value's index (`codes`): a
  lookup writes the index where it wrote the indicator, a head copies the selected key's index, and the output
  decodes to the nearest index.

The checker turns every scalar key or query a program writes into one-hot, so an Affine query reaches the
wiring only from `linear_queries`.
"""
from __future__ import annotations

import copy
import itertools
import math
from fractions import Fraction

from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import (
    CODE,
    ONEHOT,
    SCALAR,
    WORD,
    Affine,
    Aggregate,
    Const,
    Indices,
    Map,
    OneHotMux,
    Program,
    Select,
    SOp,
    Width,
    combos,
    is_hot,
    is_length,
    sort_values,
)
from hardwire.compiler.lower import feature_of, inputs_of, readers, walk
from hardwire.compiler.wire_numeric import base_terms, is_numeric_select, one_term


def output_only(prog: Program, s: SOp, read: dict[int, list[SOp]]) -> bool:
    """Is s read by nothing but the program's outputs (not the generated token, not a loop's commits)?"""
    named = [name for name, o in prog.outputs.items() if o is s]
    loop_roots = {id(c) for c in prog.loop.commits} if prog.loop else set()
    return (bool(named) and not read.get(id(s)) and prog.generate not in named and id(s) not in loop_roots)


def choose_encodings(prog: Program) -> Program:
    """A copy of prog in which the value at the last position is a `latest` (`last_positions`), every output-only
    one-hot width is a scalar, every linear query of an equality select on indices that always names a position is
    a linear form (`linear_queries`), indices and widths only such heads read are x and x^2 (`numbers`), a linear
    output of means over one selector is one mean (`one_mean`), and a boolean only lookups, aggregates' values and
    outputs read is one dimension (`flags`), as is any one-hot value only outputs read (`codes`)."""
    prog = copy.deepcopy(prog)
    last_positions(prog)
    narrow_values(prog)
    linear_queries(prog)
    numbers(prog)
    one_mean(prog)
    flags(prog)
    codes(prog)
    read = readers(prog)
    for s in walk(prog.roots()):
        if isinstance(s, Width) and s.encoding == ONEHOT and output_only(prog, s, read):
            s.encoding = SCALAR
    return prog


# ---- the value at the last position: the latest key of a `true` select, with no `length` at all -----------------
def count_of_all(s: SOp) -> bool:
    """Is s `width(select(x, y, true))`, the count of every key its query sees (`length`; i + 1 when causal)?"""
    sel = getattr(s, "selector", None)
    return isinstance(s, Width) and isinstance(sel, Select) and sel.fn is None and sel.pred == "true"


def last_positions(prog: Program) -> None:
    """In place: `aggregate(select(indices, length - 1, ==), x)` becomes `latest(select(x, y, true), x)`. The key
    at index length - 1 is the last key the query sees (in a causal program, where the count is i + 1, the query
    itself), which is what `latest` over every key picks: one index dimension breaks the tie, where the lookup of
    `length - 1` needs length one-hot (max_len + 1 dims) and the equality head reads indices one-hot. A key is
    always selected, so a one-hot result is none only where its value is."""
    if prog.loop is not None:
        return
    for s in walk(prog.roots()):
        sel = getattr(s, "selector", None)
        if not (type(s) is Aggregate and not s.pick and s.encoding != WORD and isinstance(sel, Select)
                and sel.fn is None and sel.pred == "==" and isinstance(sel.keys, Indices)):
            continue
        fit = linear_fit(sel.queries)
        if fit is None or fit[1] != -1 or len(fit[0]) != 1:
            continue
        (coef, count), = fit[0]
        if coef == 1 and count_of_all(count):
            s.selector = Select(count.selector.keys, count.selector.queries, "true", line=sel.line,
                                column=sel.column, origin=sel)
            s.pick = "latest"
            if s.encoding == ONEHOT and None not in s.value.values:   # a key is always selected: never none
                s.values = tuple(v for v in s.values if v is not None)


def narrow_values(prog: Program) -> None:
    """In place: a one-hot map's values recomputed from its inputs' values (inputs first), where that drops some
    (a `none` that can no longer reach it: last_positions' result never is none). Each value is a dimension."""
    for s in walk(prog.roots()):
        if type(s) is not Map or s.encoding != ONEHOT or not s.inputs or \
                math.prod(len(i.values) for i in s.inputs) > VALUE_BUDGET:
            continue
        try:
            got = sort_values([s.fn(*c) for c in combos(s.inputs)])   # a list: a set would merge 0 and false
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if len(got) < len(s.values) and all(s.holds(v) for v in got):
            s.values = got


# ---- a linear query of an equality select: read as a linear form, matched by an integer-equality head ----------
SQUARE_BOUND = 1 << 18  # 2|k q| + k^2 must stay below this: float32 scores then round by < 1/64 of a unit


def numeric_int(s: SOp) -> bool:
    """A one-hot value whose values are all integers (no none, no booleans): linearly readable as a number."""
    return s.encoding == ONEHOT and bool(s.values) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in s.values)


def linear_fit(s: SOp) -> tuple[tuple, Fraction] | None:
    """(terms, const) when s is a plain map over integer one-hot inputs (or such linear maps) that equals
    const + sum(coef * input) at every combination of its inputs that can meet (checked exhaustively)."""
    if type(s) is not Map or not s.inputs or not all(numeric_int(i) or isinstance(i, Affine) for i in s.inputs):
        return None
    seen = combos(s.inputs)
    if not seen:
        return None
    try:
        coefs = []
        for j in range(len(s.inputs)):  # the slope along input j, from two combinations that differ only there
            rest: dict = {}
            for c in seen:
                rest.setdefault(c[:j] + c[j + 1:], []).append(c)
            pair = next((g[:2] for g in rest.values() if len(g) > 1), None)
            coefs.append(Fraction(0) if pair is None else
                         (Fraction(s.fn(*pair[1])) - Fraction(s.fn(*pair[0]))) / (pair[1][j] - pair[0][j]))
        base = seen[0]
        const = Fraction(s.fn(*base)) - sum(c * v for c, v in zip(coefs, base))
        if any(Fraction(s.fn(*c)) != const + sum(k * v for k, v in zip(coefs, c)) for c in seen):
            return None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return tuple((c, x) for c, x in zip(coefs, s.inputs) if c != 0), const


def always_matched(prog: Program, keys: SOp, terms: tuple, const: Fraction) -> bool:
    """Every query value q names a real position: keys are `indices` and 0 <= q < length at every combination
    of the query's inputs that can meet (so the head needs no BOS fallback)."""
    if not isinstance(keys, Indices):
        return False
    flat, k0 = base_terms(terms)
    inputs = list(dict.fromkeys(x for _, x in flat))
    lengths = [j for j, x in enumerate(inputs) if is_length(x)]
    for combo in combos(inputs):
        q = const + k0 + sum(c * combo[inputs.index(x)] for c, x in flat)
        n = combo[lengths[0]] if lengths else (prog.max_len if prog.exact_len else None)
        if n is None or q.denominator != 1 or not 0 <= q < n:
            return False
    return True


def square_bounded(keys: SOp, values: tuple) -> bool:
    """The integer-equality head's scores stay small enough for float32 (SQUARE_BOUND)."""
    rk = max(abs(v) for v in keys.values)
    rq = max(abs(v) for v in values)
    return 2 * rk * rq + rk * rk < SQUARE_BOUND


def drift_bounded(keys: SOp, a: Affine) -> bool:
    """Read from snapped dims (each within 8u = 2^-21 of 0 or 1: the snap's unit steps have slope 2 and sums of
    a few terms near 3), the query form is off by at most 8u sum |c v| over the snapped terms, and a score by
    2 |k| times that (in units of lam): it must stay below 1/8 of the gap 1/2 to BOS. Embedded terms are
    exact. For reverse this holds to max_len 50 (`hardwire certify` proves it to 56; proofs/library.md)."""
    rk = max(abs(v) for v in keys.values)
    flat, _ = base_terms(a.terms)
    spread = sum(abs(c) * sum(abs(v) for v in x.values) for c, x in flat if isinstance(x, OneHotMux))
    return 2 * rk * spread * 2.0 ** -21 < 1 / 16


def snap(x: SOp) -> OneHotMux:
    """x's one-hot dims re-quantized in place (a mux of the one case x onto x itself: unit steps, then x erased).
    A staircase's one-hot output carries float error from its steep ramps; the equality head multiplies what it
    reads by up to 2 |k| lam, so it reads the snapped copy, whose error is a rounding of 1."""
    return OneHotMux(f"snap({x.label})", x.values, x.encoding, x.line, x.column, fn=lambda v: v, inputs=(x,),
                     text="snap", cases=((None, x),), target=x, polarity=(True,))


def snapped(a: Affine, snaps: dict[int, OneHotMux]) -> Affine:
    """a with every term that is not an exact embedded feature read through its snap (one per value)."""
    terms = []
    for c, x in a.terms:
        if isinstance(x, Affine):
            x = snapped(x, snaps)
        elif feature_of(x) not in ("token", "position", "const"):
            x = snaps.setdefault(id(x), snap(x))
        terms.append((c, x))
    return Affine(a.label, a.values, a.encoding, a.line, a.column, terms=tuple(terms), const=a.const)


def affine_predicate(sel: Select) -> tuple[Fraction, Fraction] | None:
    """(a, b) when sel holds exactly where key == a * query + b, on every pair of its (integer) values: `==`
    itself, or a custom predicate such as Tracr's shift_by, `(k, q) -> q == k + 2` (a = 1, b = -2)."""
    if sel.fn is None:
        return (Fraction(1), Fraction(0)) if sel.pred == "==" else None
    kvals, qvals = sel.keys.values, sel.queries.values
    if len(kvals) * len(qvals) > VALUE_BUDGET:
        return None
    match: dict = {}
    for q in qvals:
        ks = [k for k in kvals if sel.fn(k, q)]
        if len(ks) > 1:
            return None
        if ks:
            match[q] = ks[0]
    if not match:
        return None
    pts = sorted(match.items())
    slopes = [Fraction(pts[1][1] - pts[0][1], pts[1][0] - pts[0][0])] if len(pts) > 1 else [1, -1, 0]
    keyset = set(kvals)
    for a in slopes:
        b = Fraction(pts[0][1]) - a * pts[0][0]
        if all(match[q] == a * q + b if q in match else a * q + b not in keyset for q in qvals):
            return a, b
    return None


def one_value_query(sel: Select) -> Affine | None:
    """The query of an equality (or an affine predicate, affine_predicate) between integer values as one term
    c * q + b, when q is itself an integer value of the token or the position (embedded, so exact: its square
    is linear in its dims too, and no snap is needed)."""
    q = sel.queries
    if isinstance(q, Const) or isinstance(sel.keys, Const) or feature_of(q) not in ("token", "position") \
            or not numeric_int(q) or not numeric_int(sel.keys):
        return None
    fit = affine_predicate(sel)
    if fit is None or fit[0] == 0:
        return None
    a, b = fit
    values = sort_values({a * v + b for v in q.values})
    values = tuple(int(v) if v.denominator == 1 else v for v in values)
    return Affine(f"{q.label}_query", values, SCALAR, sel.line, sel.column, terms=((a, q),), const=b)


def linear_queries(prog: Program) -> None:
    """In place: the query of `aggregate(select(indices, q, ==), x)` becomes an Affine when q is a linear map of
    integer one-hot values that only such selects read and that always names a real position. The head then
    reads q as a linear form (wire_numeric.py) and q needs no MLP and no residual dimensions."""
    if prog.loop is not None:
        return
    read = readers(prog)
    roots = {id(r) for r in prog.roots()}
    heads = [s for s in walk(prog.roots()) if isinstance(s, Aggregate) and not s.pick
             and isinstance(s.selector, Select) and (s.selector.pred == "==" or s.selector.fn is not None)
             and numeric_int(s.selector.keys)]
    done: dict[int, Affine] = {}
    snaps: dict[int, OneHotMux] = {}

    def rewrite(q: SOp) -> Affine | None:
        """q as an Affine over values that stay in the residual; an input that is itself a linear map read only
        by q is expanded into its own terms (so it needs no block either). Nothing is changed in place."""
        fit = linear_fit(q)
        if fit is None:
            return None
        terms, const = fit
        flat = []
        for c, x in terms:
            inner = rewrite(x) if id(x) not in roots and len(read.get(id(x), [])) == 1 else None
            flat.append((c, inner if inner is not None else x))
        return Affine(q.label, q.values, SCALAR, q.line, q.column, terms=tuple(flat), const=const)

    def one_value(s: Aggregate) -> None:
        """`==` on a number, or a predicate that is one, as a one-term query: BOS at q^2 - 1/2, matched or not."""
        own = one_value_query(s.selector)
        if own is not None:
            a = snapped(own, snaps)
            if square_bounded(s.selector.keys, own.values) and drift_bounded(s.selector.keys, a):
                s.selector = Select(s.selector.keys, a, "==", line=s.selector.line, column=s.selector.column)
    for s in heads:
        q, keys = s.selector.queries, s.selector.keys
        if s.selector.fn is not None or id(q) in roots or not all(
                isinstance(r, Aggregate) and isinstance(r.selector, Select) and r.selector.queries is q
                and r in heads for r in read.get(id(q), [])):
            one_value(s)
            continue
        a = done.get(id(q)) or rewrite(q)
        if a is None or not always_matched(prog, keys, a.terms, a.const) or not square_bounded(keys, q.values):
            one_value(s)
            continue
        a = snapped(a, snaps)
        if not drift_bounded(keys, a):
            one_value(s)
            continue
        done[id(q)] = a
        s.selector = Select(keys, a, "==")


# ---- positions and counts that equality heads alone read: two numbers, x and x^2 -------------------------------
def numbers(prog: Program) -> None:
    """In place: `indices`, a width, or a staircase over a sum of widths (split.py's rank), read only by
    integer-equality heads (wire_numeric: as their keys, k and k^2, or as the one value of their query, q and q^2
    for BOS's level) holds x and x^2 as two numbers instead of one dimension per value. The position table embeds
    both; a staircase writes both from the same ramps."""
    if prog.loop is not None:
        return
    read = readers(prog)
    roots = {id(r) for r in prog.roots()}

    def as_number(r: SOp, x: SOp) -> bool:
        if isinstance(r, Aggregate) and isinstance(r.selector, Select) and is_numeric_select(r.selector):
            return r.selector.keys is x and r.value is not x
        single = one_term(r) if isinstance(r, Affine) else None
        return single is not None and single[1] is x and any(
            isinstance(a, Aggregate) and isinstance(a.selector, Select) and a.selector.queries is r
            and is_numeric_select(a.selector) for a in read.get(id(r), []))
    for x in walk(prog.roots()):
        staircase = type(x) is Map and len(x.inputs) == 1 and isinstance(x.inputs[0], Affine)   # split.py's rank
        if not ((isinstance(x, (Indices, Width)) or staircase) and numeric_int(x)) or id(x) in roots \
                or not read.get(id(x)):
            continue
        if all(as_number(r, x) for r in read[id(x)]):
            x.encoding, x.square = SCALAR, True


# ---- a linear combination of means over one selector, as an output: one mean of the combination ---------------
def one_mean(prog: Program) -> None:
    """In place: `output b = opens - closes`, where both are means over the same selector, becomes
    `aggregate(prevs, x_open - x_close)`: a mean is linear in its values (an empty selection gives 0 either way),
    so one head computes it and no MLP reads the two means back (the checker's copy of an Affine output is a
    staircase over every value the combination can take: 773 units at max_len 10)."""
    for name, out in list(prog.outputs.items()):
        if not (type(out) is Map and out.text == "copy" and len(out.inputs) == 1 and isinstance(out.inputs[0], Affine)):
            continue
        a = out.inputs[0]
        aggs = [x for _, x in a.terms]
        if a.const != 0 or not aggs or not all(isinstance(x, Aggregate) and not x.pick and x.encoding == SCALAR
                                               for x in aggs):
            continue
        sel = aggs[0].selector
        if not all(x.selector is sel for x in aggs):
            continue
        terms = tuple((c, x.value) for c, x in a.terms)
        if math.prod(len(x.values) for _, x in terms) > VALUE_BUDGET:
            continue
        sums = {sum(c * Fraction(v) for (c, _), v in zip(terms, vs)) for vs in itertools.product(
            *(x.values for _, x in terms))}
        value = Affine(f"_{name}_values", sort_values(sums), SCALAR, a.line, a.column, terms=terms,
                       const=Fraction(0))
        prog.outputs[name] = Aggregate(name, out.values, SCALAR, out.line, out.column, selector=sel, value=value)


# ---- a boolean as one 0/1 dimension ------------------------------------------------------------------------------
def flags(prog: Program) -> None:
    """In place: a one-hot boolean (exactly false and true, never none) computed by a map or picked by a
    `latest`/`earliest`, read only by maps (lookups read its two indicators, Layout.hot), as an aggregate's value
    (a head's value columns read the same indicators, or the 0/1 number) and by outputs, holds one dimension
    instead of two. A picked flag is the picked key's 0/1; an output decodes to the nearer of false and true."""
    if prog.loop is not None:
        return
    read = readers(prog)
    gen = prog.outputs.get(prog.generate) if prog.generate else None

    def reads_as_value(r: SOp, s: SOp) -> bool:
        if type(r) is Map:
            return True
        return type(r) is Aggregate and r.value is s and all(x is not s for x in inputs_of(r)[:-1])
    candidates = []
    for s in walk(prog.roots()):
        boolean = s.encoding == ONEHOT and len(s.values) == 2 and all(isinstance(v, bool) for v in s.values)
        if not (boolean and s is not gen and (type(s) is Map and s.inputs or type(s) is Aggregate and s.pick != "")):
            continue
        if all(reads_as_value(r, s) for r in read.get(id(s), [])):
            candidates.append(s)
    for s in candidates:
        s.encoding = SCALAR


# ---- a value only outputs read: one dimension holding its value's index ----------------------------------------
def codes(prog: Program) -> None:
    """In place: a one-hot map or aggregate (of a one-hot value or flag) read by nothing but outputs holds the
    index of its value in one dimension (CODE) instead of one dimension per value. Both are linear in the value's
    indicators, so a lookup writes the index where it wrote the indicator, and a head's mean over keys that agree
    (the only aggregate the interpreter allows) is their index; BOS writes none's. Decoded to the nearest index."""
    if prog.loop is not None:
        return
    read = readers(prog)
    for s in walk(prog.roots()):
        if s.encoding != ONEHOT or len(s.values) < 2 or not output_only(prog, s, read):
            continue
        if type(s) is Map and s.inputs or type(s) is Aggregate and is_hot(s.value) and not isinstance(s.value, Const):
            s.encoding = CODE
