"""Exact weights: embeddings, hard attention heads and lookup MLPs, from a schedule and a layout.

Long: one module per stage; word-valued blocks are already apart in wire_words.py, and what is left (embedding,
scores, lookups, staircases, norms, erasure, the size check) shares the Units and Layout bookkeeping.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hardwire.compiler import wire_numeric, wire_words
from hardwire.compiler.check.messages import called
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.sops import (
    CODE,
    ONEHOT,
    SCALAR,
    WORD,
    Const,
    Indices,
    Map,
    Mux,
    Norm,
    OneHotMux,
    Program,
    Register,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Tokens,
    Width,
    WordMux,
    WordTest,
    combos,
    is_hot,
    pred_holds,
    selector_atoms,
    selector_holds,
    value_key,
)
from hardwire.compiler.layout import BOS, NOT_BOS, Layout
from hardwire.compiler.lower import ATTN, EMBED, MLP, Block, feature_of

LEAK_EXPONENT = 30.0  # softmax leak per key <= exp(-30) ~ 1e-13: far below float32 resolution


BOS_FRAC = -2.0  # a width's fraction dim at BOS: its head adds at most 1, so it stays <= -1, below every ramp


def scale(prog: Program, layout: Layout, gap: float) -> float:
    """The attention scale that leaks at most e^-(30 + b ln 2) over all keys, for a score gap `gap`.

    b is the widest word's bit count: a word bit is read with weights up to 2^b, so its leak must be that much
    smaller for every MLP sum over it to round back onto its exact value (`hardwire certify`, Lemma P).
    """
    return (math.log(prog.max_len + 1) + LEAK_EXPONENT + layout.word_bits * math.log(2)) / gap


def feature_value(s: SOp, token=None, index=None):
    if isinstance(s, Tokens):
        return token
    if isinstance(s, Indices):
        return index
    if isinstance(s, Const):
        return s.value
    v = s.fn(*(feature_value(i, token, index) for i in s.inputs))
    return 0 if v is None and s.encoding == SCALAR else v  # a scalar holds none as 0, as the interpreter does


def write(vec: np.ndarray, s: SOp, layout: Layout, v) -> None:
    """v's encoding added to an embedding row: a word's bits, else what out_write gives an MLP to write."""
    if s.encoding == WORD:
        for k, dim in enumerate(layout.dims[(id(s), "")]):
            vec[dim] += float((v >> k) & 1)
        return
    for dim, c in out_write(s, layout, v).items():
        vec[dim] += c


POSITION_ROWS = 1 << 20   # a position table of more rows than this is stored as its formula, where it has one


def position_form(prog: Program, blocks: list[Block], mode: str = "auto") -> bool:
    """Whether the position rows are stored as a formula (embed.position_form: row i + 1 = form[0] + i * form[1],
    BOS's row 0): they have one when no embedded value is a function of `indices` (the index of `latest` and
    `earliest` is the formula's second row). "auto" uses it past POSITION_ROWS rows, "formula" always (a HardwireError
    naming the value that needs the table when there is none), "table" never."""
    if mode not in ("auto", "formula", "table"):
        raise ValueError("positions is 'auto', 'formula' or 'table'")
    srcs = [(b.sop, b.sop.init if isinstance(b.sop, Register) else b.sop) for b in blocks]
    need = [s for s, src in srcs if not isinstance(src, Const) and feature_of(src) != "token"]  # embed's position rows
    if mode == "formula" and need:
        s = need[0]
        what = "is the position" if isinstance(s, Indices) else "is a function of indices"
        raise HardwireError(f"the position rows have no formula: '{s.label}' {what}, so they need a table of "
                            f"{prog.max_len + 1} rows", prog.file, s.line or None, s.column or None)
    return not need and (mode == "formula" or (mode == "auto" and prog.max_len + 1 > POSITION_ROWS))


def embed(prog: Program, blocks: list[Block], layout: Layout, d: int):
    """Token and position tables (the positions as a formula of two rows with `layout.position_form`); with `vocab
    word` a token is embedded by its bits (embed.bits)."""
    tok = np.zeros((1 if prog.word_vocab else len(prog.vocab) + 1, d))
    bits = np.zeros((prog.word_bits, d)) if prog.word_vocab else None
    form = layout.position_form
    pos = np.zeros((2 if form else prog.max_len + 1, d))
    tok[0, BOS] = 1.0
    pos[0 if form else slice(1, None), NOT_BOS] = 1.0   # the formula's row 0 is every input position's constant
    for b in blocks:
        s = b.sop
        src = s.init if isinstance(s, Register) else s
        if isinstance(src, Tokens) and prog.word_vocab:
            for k, dim in enumerate(layout.dims[(id(s), "")]):
                bits[k, dim] += 1.0
        elif isinstance(src, Const) and form:
            write(pos[0], s, layout, src.value)
        elif isinstance(src, Const):
            for i in range(prog.max_len):
                write(pos[i + 1], s, layout, src.value)
        elif feature_of(src) == "token":
            for t_id, t in enumerate(prog.vocab, start=1):
                write(tok[t_id], s, layout, feature_value(src, token=t))
        else:
            for i in range(prog.max_len):
                write(pos[i + 1], s, layout, feature_value(src, index=i))
        if s.encoding == ONEHOT and None in s.values:  # the BOS invariant: a value that can be none is none at BOS
            write(tok[0], s, layout, None)
    return tok, pos, bits


def terms_of(sel) -> list | None:
    """A conjunction of terms adds up: a term is a (possibly negated) select, or any combination whose selects
    share one keys value and one queries value; `!` is pushed through `|` (De Morgan). None where what is left
    is a `|` across different keys or queries, which no sum of terms with one threshold computes.

    A term is (keys, queries, holds, grouped): grouped (a custom predicate in it) spells the truth table out
    with key (or query) values of equal rows sharing one column; named predicates keep one column per key value.
    """
    def shared(s):
        atoms = selector_atoms(s)
        if len({id(a.keys) for a in atoms}) == 1 and len({id(a.queries) for a in atoms}) == 1:
            k, q = atoms[0].keys, atoms[0].queries
            custom = any(a.fn is not None for a in atoms)
            return [(k, q, lambda kv, qv, s=s: selector_holds(s, {id(k): kv}, {id(q): qv}), custom)]
        return None

    def conj(s):
        if isinstance(s, Select) and s.fn is None and s.pred == "true":  # every pair: reads neither side
            return [(None, None, None, False)]
        if isinstance(s, Select) and s.fn is not None:
            return [(s.keys, s.queries, s.fn, True)]
        if isinstance(s, SelNot) and isinstance(s.inner, Select) and s.inner.fn is not None:
            return [(s.inner.keys, s.inner.queries, lambda k, q, f=s.inner.fn: not f(k, q), True)]
        if isinstance(s, Select):
            return [(s.keys, s.queries, lambda k, q, a=s: pred_holds(a.pred, k, q), False)]
        if isinstance(s, SelNot) and isinstance(s.inner, Select):
            return [(s.inner.keys, s.inner.queries, lambda k, q, a=s.inner: not pred_holds(a.pred, k, q), False)]
        if isinstance(s, SelAnd):
            left, right = conj(s.left), conj(s.right)
            return None if left is None or right is None else left + right
        one = shared(s)
        if one is not None:
            return one
        if isinstance(s, SelNot) and isinstance(s.inner, SelNot):
            return conj(s.inner.inner)
        if isinstance(s, SelNot) and isinstance(s.inner, SelOr):
            return conj(SelAnd(SelNot(s.inner.left), SelNot(s.inner.right)))
        return None
    return conj(sel)


def selector_terms(sel, where: tuple = (None, None, None)) -> list:
    """terms_of(sel), or the refusal of a `|` across different keys or queries (compiler/combine.py rewrites
    those into one select before wiring, so this is reached only by a selector it left alone)."""
    terms = terms_of(sel)
    if terms is not None:
        return terms
    raise HardwireError("this selector needs `|` between selects on different keys or queries (`!(a & b)` is "
                        "`!a | !b`), which one attention head cannot compute: its score adds up conditions that "
                        "must all hold; combine the keys (and the queries) into one value with map first", *where)


def grouped_columns(keys: SOp, queries: SOp, holds, layout: Layout) -> list[tuple[dict, dict]]:
    """A truth table as few (query, key) column pairs: key values whose rows are equal share a column (or query
    values whose columns are equal, if fewer), and all-false rows cost none. A key-only predicate is one column
    against every query, a query-only one is one column against every key: no product grid."""
    kvals, qvals = keys.values, queries.values
    table = [[bool(holds(kv, qv)) for qv in qvals] for kv in kvals]
    by_key: dict[tuple, list[int]] = {}
    by_query: dict[tuple, list[int]] = {}
    for i, row in enumerate(table):
        if any(row):
            by_key.setdefault(tuple(row), []).append(i)
    for j in range(len(qvals)):
        col = tuple(row[j] for row in table)
        if any(col):
            by_query.setdefault(col, []).append(j)

    def total(s: SOp, chosen: list[int], key: bool) -> dict[int, float]:
        """The sum of s's value readers over `chosen`: not_bos when that is every value (one-hot, none absent)."""
        if len(chosen) == len(s.values) and None not in s.values:
            return {NOT_BOS: 1.0}
        form: dict[int, float] = {}
        reads = layout.read(s)
        for i in chosen:
            for dim, c in reads[i].items():
                form[dim] = form.get(dim, 0.0) + c
            if key and s.values[i] is None:  # none at BOS too (the BOS invariant): BOS must not score
                form[BOS] = form.get(BOS, 0.0) - 1.0
        return form
    if len(by_query) < len(by_key):
        return [(total(queries, js, False), total(keys, [i for i, b in enumerate(col) if b], True))
                for col, js in by_query.items()]
    return [(total(queries, [j for j, b in enumerate(row) if b], False), total(keys, ks, True))
            for row, ks in by_key.items()]


def score_columns(s: SOp, prog: Program, layout: Layout):
    """The head's score as columns: query reads, key reads (one pair per column), and the scale."""
    if wire_numeric.is_numeric_select(s.selector):  # an integer query read as a number: gap 1/2 to BOS
        return (*wire_numeric.numeric_score_columns(s.selector, layout), wire_numeric.dyadic(scale(prog, layout, 0.5)))
    if wire_words.is_word_select(s.selector):  # gap 1 between a match and BOS
        cols_q, cols_k = wire_words.word_score_columns(s.selector, layout)
        if getattr(s, "pick", ""):   # latest/earliest: the match weighs 2 (max_len + 1), and the index breaks ties
            cols_q, cols_k = wire_words.pick_columns(cols_q, cols_k, s.pick, prog.max_len, layout.index_dim())
        return cols_q, cols_k, scale(prog, layout, 1.0)
    if any(a.keys.encoding == WORD for a in selector_atoms(s.selector)):
        raise HardwireError("a select on words cannot be combined with other selects (yet)", prog.file,
                            s.line or None, s.column or None)
    terms = selector_terms(s.selector, (prog.file, s.line or None, s.column or None))
    m = len(terms)
    is_width = isinstance(s, Width)
    gap = 1.0 if is_width else 0.5
    lam = scale(prog, layout, gap)
    cols_q, cols_k = [], []
    for keys, queries, holds, grouped in terms:
        if keys is None:  # `true`: one column, every real key against every real query
            cols_q.append({NOT_BOS: 1.0})
            cols_k.append({NOT_BOS: 1.0})
            continue
        if grouped:
            for qcol, kcol in grouped_columns(keys, queries, holds, layout):
                cols_q.append(qcol)
                cols_k.append(kcol)
            continue
        kread, qread = layout.hot(keys), layout.hot(queries)
        for kv, kr in zip(keys.values, kread):
            if kv is None:  # none at BOS too (the BOS invariant): a term holding on a none key must not score BOS
                kr = {**kr, BOS: kr.get(BOS, 0.0) - 1.0}
            qcol = {}
            for qv, qr in zip(queries.values, qread):
                if holds(kv, qv):
                    for dim, c in qr.items():
                        qcol[dim] = qcol.get(dim, 0.0) + c
            cols_q.append(qcol)
            cols_k.append(kr)
    theta = m if is_width else m - 0.5
    if getattr(s, "pick", ""):
        # match terms weigh G > 2 max_len, and the key's index is added (latest) or subtracted (earliest):
        # the last (first) selected key wins by 1, and BOS still sits G/2 - max_len >= 1 from both sides
        big = 2.0 * (prog.max_len + 1)
        cols_q = [{dim: c * big for dim, c in col.items()} for col in cols_q]
        cols_q.append({NOT_BOS: 1.0})
        cols_k.append({layout.index_dim(): 1.0 if s.pick == "latest" else -1.0})
        theta, m = theta * big, m * big
        lam = scale(prog, layout, 1.0)
    cols_q.append({NOT_BOS: theta, BOS: m + 1.0})
    cols_k.append({BOS: 1.0})
    return cols_q, cols_k, lam


def head_columns(s: SOp, prog: Program, layout: Layout) -> tuple:
    """One head as sparse columns, nothing dense yet: (query columns, key columns, value columns, scale)."""
    cols_q, cols_k, lam = score_columns(s, prog, layout)
    if isinstance(s, Width):
        vcols = [({BOS: 1.0}, layout.frac(s)[0])]
    else:
        out = layout.alloc(s)
        x = s.value
        if s.encoding == WORD:  # copy the bits; an empty selection reads BOS, whose words are 0
            vcols = [({src: 1.0}, dst) for src, dst in zip(layout.dims[(id(x), "")], out)]
        elif s.encoding == SCALAR:
            vcols = [(layout.number(x), out[0])]
        elif s.encoding == CODE:  # the selected key's value index (encode.codes); BOS's is none's
            code: dict[int, float] = {}
            for v, r in zip(x.values, layout.hot(x)):
                for dim, c in r.items():
                    code[dim] = code.get(dim, 0.0) + c * s.value_index(v)
            if None not in x.values and None in s.values:
                code[BOS] = code.get(BOS, 0.0) + s.value_index(None)
            vcols = [({dim: c for dim, c in code.items() if c}, out[0])]
        else:
            vcols = [(r, out[s.value_index(v)]) for v, r in zip(x.values, layout.hot(x))]
            if None not in x.values and None in s.values:   # (none: a head that always selects a key)
                vcols.append(({BOS: 1.0}, out[s.value_index(None)]))
    return cols_q, cols_k, vcols, lam


def dense_head(columns: tuple, d: int):
    """head_columns' output as W_Q, W_K, W_V, W_O numpy arrays (and the scale)."""
    cols_q, cols_k, vcols, lam = columns
    wq, wk = np.zeros((d, len(cols_q))), np.zeros((d, len(cols_k)))
    for j, (cq, ck) in enumerate(zip(cols_q, cols_k)):
        for dim, c in cq.items():
            wq[dim, j] += c * lam
        for dim, c in ck.items():
            wk[dim, j] += c
    wv, wo = np.zeros((d, len(vcols))), np.zeros((len(vcols), d))
    for j, (r, o) in enumerate(vcols):
        for dim, c in r.items():
            wv[dim, j] += c
        wo[j, o] = 1.0
    return wq, wk, wv, wo, lam


class Units:
    """Hidden units of one MLP: each reads a linear form of the residual and writes a vector."""

    def __init__(self):
        self.reads: list[dict[int, float]] = []
        self.writes: list[dict[int, float]] = []
        self.norms: list[tuple[dict[int, float], tuple[int, int], float]] = []  # (x's form, (true, false), eps)

    def add(self, read: dict[int, float], write: dict[int, float]) -> None:
        self.reads.append(read)
        self.writes.append(write)


def out_write(s: SOp, layout: Layout, v, coeff: float = 1.0) -> dict[int, float]:
    dims = layout.dims[(id(s), "")]
    if s.encoding == ONEHOT:
        return {dims[s.value_index(v)]: coeff}
    if s.encoding == CODE:
        return {dims[0]: coeff * float(s.value_index(v))}
    out = {dims[0]: coeff * float(0 if v is None else v)}
    if s.square:   # a number an equality head reads as a key: its square beside it (wire_numeric)
        out[layout.alloc(s, ".sq")[0]] = coeff * float(v) ** 2
    return out


def lookup(s: Map, layout: Layout, units: Units, in_loop: bool = False) -> None:
    """One hidden unit per combination of one-hot input values: ReLU(sum of indicators - (k-1)).

    The constant rides on not_bos. At BOS every indicator is 0 but a none's (the BOS invariant), so a unit whose
    combination holds no none is off there by itself; one that does gets -(k+1) on bos to push it off. In a loop
    body BOS holds the registers' values, so every unit gets it."""
    k = len(s.inputs)
    reads = [dict(zip(map(value_key, i.values), layout.hot(i))) for i in s.inputs]
    for vals in combos(s.inputs):  # a combination that never occurs (an index past `length`) needs no unit
        combo = [(v, r[value_key(v)]) for v, r in zip(vals, reads)]
        read = {NOT_BOS: 1.0 - k}
        if in_loop or any(v is None for v in vals):
            read[BOS] = -(k + 1.0)
        for _, r in combo:
            for dim, c in r.items():
                read[dim] = read.get(dim, 0.0) + c
        v = s.fn(*(val for val, _ in combo))
        w = out_write(s, layout, v)
        if any(w.values()):
            units.add(read, w)


def discretize(s: SOp, x_read: dict[int, float], grid: list, f, layout: Layout, units: Units,
               gate: dict[int, float] | None = None, bos_off: bool = False) -> None:
    """Piecewise-constant function of one scalar on a known grid: a steep ramp at each change.

    With a gate (a form that is 1 when some one-hot inputs hold given values and <= 0 otherwise), every
    unit is pushed off unless the gate is 1: one gated staircase per combination of those values.
    `bos_off`: x itself is below the grid at BOS (a width's fraction, `BOS_FRAC`), so no ramp reads BOS.
    """
    pts = [(Fraction(g), f(g)) for g in grid]
    pts.sort(key=lambda p: p[0])
    bound = max(abs(float(g)) for g, _ in pts) + 1.0
    base = dict(gate) if gate is not None else {NOT_BOS: 1.0}
    units.add(base, out_write(s, layout, pts[0][1]))
    for (g0, v0), (g1, v1) in zip(pts, pts[1:]):
        if value_key(v0) == value_key(v1):  # by type too: 0 and false are two one-hot values
            continue
        t, h = float((g0 + g1) / 2), float((g1 - g0) / 2)
        big = bound / h + 2.0
        w = {}
        for dim, c in out_write(s, layout, v1).items():
            w[dim] = w.get(dim, 0.0) + c
        for dim, c in out_write(s, layout, v0).items():
            w[dim] = w.get(dim, 0.0) - c
        for shift, sign in ((0.5, 1.0), (-0.5, -1.0)):
            read = {dim: c / h for dim, c in x_read.items()}
            read[NOT_BOS] = read.get(NOT_BOS, 0.0) + (-t / h + shift)
            if not bos_off:
                read[BOS] = read.get(BOS, 0.0) - big
            if gate is not None:  # + 2 big (gate - 1): off by more than any ramp's reach unless the gate is 1
                for dim, c in gate.items():
                    read[dim] = read.get(dim, 0.0) + 2.0 * big * c
                read[NOT_BOS] = read.get(NOT_BOS, 0.0) - 2.0 * big
            units.add(read, {dim: sign * c for dim, c in w.items()})


def gated_discretize(s: Map, layout: Layout, units: Units) -> None:
    """A map over one scalar and one-hot inputs: a staircase in the scalar for each one-hot combination."""
    k = next(j for j, i in enumerate(s.inputs) if not is_hot(i))
    x, others = s.inputs[k], [i for j, i in enumerate(s.inputs) if j != k]
    reads = [dict(zip(map(value_key, i.values), layout.hot(i))) for i in others]
    for vals in combos(others):
        combo = [(v, r[value_key(v)]) for v, r in zip(vals, reads)]
        gate = {NOT_BOS: 1.0 - len(others), BOS: -(len(others) + 1.0)}
        for _, r in combo:
            for dim, c in r.items():
                gate[dim] = gate.get(dim, 0.0) + c
        vals = [v for v, _ in combo]
        f = lambda g, vals=vals: s.fn(*(vals[:k] + [g] + vals[k:]))
        discretize(s, layout.read(x)[0], list(x.values), f, layout, units, gate)


def norm(s: Norm, layout: Layout, units: Units) -> None:
    """layernorm(x, eps): a LayerNorm over (x, -x) writes (a, -a)/2 to (true, false), a unit adds 1/2 to both."""
    false, true = layout.dims[(id(s), "")]
    units.norms.append((layout.read(s.x)[0], (true, false), float(s.eps)))
    units.add({NOT_BOS: 1.0}, {true: 0.5, false: 0.5})


def mlp(b: Block, layout: Layout, units: Units, file: str | None = None, in_loop: bool = False) -> None:
    """The hidden units of one MLP block. `in_loop`: the block is in a loop body, whose last MLP erases every
    temporary at every position, BOS included, so a width there cannot rely on `BOS_FRAC`."""
    s = b.sop
    if isinstance(s, WordMux):
        wire_words.mux(s, layout, units)
        return
    if isinstance(s, OneHotMux):
        wire_words.onehot_mux(s, layout, units)
        return
    layout.alloc(s)
    if isinstance(s, Norm):
        norm(s, layout, units)
        return
    if isinstance(s, WordTest):
        wire_words.test(s, layout, units)
        return
    if isinstance(s, Width):
        grid = [Fraction(1, w + 1) for w in s.values]
        discretize(s, layout.read(s, ".frac")[0], grid, lambda g: int(1 / g) - 1, layout, units,
                   bos_off=not in_loop)
    elif all(is_hot(i) for i in s.inputs):
        lookup(s, layout, units, in_loop)
    elif len(s.inputs) == 1:
        x = s.inputs[0]
        discretize(s, layout.read(x)[0], list(x.values), s.fn, layout, units)
    elif sum(not is_hot(i) for i in s.inputs) == 1:
        gated_discretize(s, layout, units)
    else:
        raise HardwireError(f"{called(s, 'this map')}: an MLP over several scalar inputs cannot be a lookup; wrap all "
                            "but one in onehot(...), or combine them linearly first (x - y is free)", file, s.line,
                            s.column)
    if s.encoding == ONEHOT and None in s.values:
        units.add({BOS: 1.0}, out_write(s, layout, None))


def n_layers(when: dict[Block, int]) -> int:
    last = max(when.values(), default=-1)
    return last // 2 + 1 if last >= 0 else 0


def wire(prog: Program, segments: list[dict[Block, int]], loop_index: int | None = None,
         max_params: int | None = None, positions: str = "auto"):
    """All weights as numpy arrays, layer by layer, plus the layout.

    `segments` are schedules laid one after the other (a loop body, then what follows it). The loop body's
    last MLP also erases every value the body wrote except the registers, so each pass starts clean.
    Every layer is planned as sparse columns and hidden units first; a model over `max_params` parameters
    is refused then, before any dense matrix is allocated. `positions`: the position rows' storage
    (`position_form`).
    """
    layout = Layout()
    layout.word_bits = max([b.sop.bits for w in segments for b in w if b.sop.encoding == WORD], default=0)
    orders = [sorted(w, key=lambda b: (w[b], b.kind, b.sop.label)) for w in segments]
    embeds: list[Block] = []
    for order in orders:  # allocate every residual subspace first, in schedule order
        for b in order:
            if b.kind == EMBED:
                if (id(b.sop), "") not in layout.dims:
                    embeds.append(b)
                layout.alloc(b.sop)
            elif b.kind == ATTN and isinstance(b.sop, Width):
                layout.frac(b.sop)
            elif not (isinstance(b.sop, Mux) and b.sop.target is not None):
                layout.alloc(b.sop)
    if any(getattr(b.sop, "pick", "") for w in segments for b in w):
        layout.index_dim()
    layout.position_form = position_form(prog, embeds, positions)
    d = len(layout.labels)
    plan = []  # per layer: its heads as sparse columns and its MLP's hidden units
    owners: tuple[list, list] = ([], [])  # (sop, d_head) per head, (sop, hidden units) per MLP block: for check_size
    for k, (order, when) in enumerate(zip(orders, segments)):
        count = n_layers(when)
        for layer in range(count):
            blocks = [b for b in order if b.kind == ATTN and when[b] == 2 * layer]
            heads = [head_columns(b.sop, prog, layout) for b in blocks]
            owners[0].extend((b.sop, max(len(h[0]), len(h[2]))) for b, h in zip(blocks, heads))
            units = Units()
            for b in order:
                if b.kind == MLP and when[b] == 2 * layer + 1:
                    before = len(units.reads) + 2 * len(units.norms)
                    mlp(b, layout, units, prog.file, in_loop=k == loop_index)
                    owners[1].append((b.sop, len(units.reads) + 2 * len(units.norms) - before))
            if k == loop_index and layer == count - 1:
                erase_temporaries(order, layout, units)
            plan.append((heads, units))
    from hardwire.compiler.size_budget import contributors
    size, parts = check_size(prog, d, plan, max_params, layout, [b.sop for o in orders for b in o], owners)
    layout.largest = contributors(size, parts)  # where the size goes: what `hardwire compile` says
    tok, pos, bits = embed(prog, embeds, layout, d)
    for k, order in enumerate(orders):  # a width's fraction starts below its grid at BOS (see `discretize`)
        for b in order:
            if b.kind == ATTN and isinstance(b.sop, Width) and k != loop_index:
                tok[0, layout.frac(b.sop)[0]] = BOS_FRAC
    if layout.index is not None and layout.position_form:
        pos[1, layout.index] = 1.0
    elif layout.index is not None:
        pos[1:, layout.index] = np.arange(prog.max_len)
    layers = [([dense_head(h, d) for h in heads], units) for heads, units in plan]
    return layout, tok, pos, bits, layers


def planned_size(prog: Program, d: int, plan: list, position_form: bool = False) -> dict:
    """The size of the model a plan packs into (as artifact.build packs it): layers, d_model, d_mlp, params."""
    rows = (1 if prog.word_vocab else len(prog.vocab) + 1) + (2 if position_form else prog.max_len + 1)
    params = (rows + (prog.word_bits if prog.word_vocab else 0)) * d
    for heads, units in plan:
        d_head = max([max(len(q), len(v)) for q, _, v, _ in heads], default=0)
        params += 4 * len(heads) * d * d_head + 2 * d * (len(units.reads) + 2 * len(units.norms))
    return {"layers": len(plan), "d_model": d, "d_mlp": max([len(u.reads) for _, u in plan], default=0),
            "params": params}


def check_size(prog: Program, d: int, plan: list, max_params: int | None, layout: Layout | None = None,
               sops: list | None = None, owners: tuple[list, list] = ([], [])) -> tuple[dict, list]:
    """The planned size and each value's share of it (compiler/size_budget.py); over `max_params` (None: no
    budget), refused, naming the size it would have had and the value with the largest share, at its line:column."""
    from hardwire.compiler.size_budget import refuse, shares
    size = planned_size(prog, d, plan, layout is not None and layout.position_form)
    parts = shares(layout, sops or [], *owners) if layout is not None else []
    if max_params is not None and size["params"] > max_params:
        raise refuse(prog, size, max_params, parts)
    return size, parts


def erase_temporaries(order: list[Block], layout: Layout, units: Units) -> None:
    """Every dimension the loop body wrote, registers excepted, back to 0 for the next pass."""
    dims: list[int] = []
    for b in order:
        if b.kind == EMBED or (isinstance(b.sop, Mux) and b.sop.target is not None):
            continue
        part = ".frac" if (b.kind == ATTN and isinstance(b.sop, Width)) else ""
        for dim in layout.dims[(id(b.sop), part)]:
            if dim not in dims:
                dims.append(dim)
    wire_words.erase(units, dims)
