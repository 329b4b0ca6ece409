"""Stage 5 for an equality select on integers read as numbers: scores 2kq - k^2, no one-hot query.

`aggregate(select(indices, q, ==), x)` where q is a linear form (encode.linear_queries: e.g. `length - indices
- 1`, read straight from the one-hot dims of length and indices) scores key k against query q as
lam (2 k q - k^2) = lam (q^2 - (k - q)^2): the key equal to q tops every other by lam (the values are integers),
and BOS sits at lam (q^2 - 1/2) where q is one value's linear form (then a query may match nothing and read BOS), else
at lam (q2min - 1/2), below every match, which then always exists (encode.always_matched). The key's k and
k^2 are both linear readings of its one-hot dims (Layout.number), so the head needs no extra dimension; lam is a
power of two, so every score is exact in float32 (`dyadic`).
"""
from __future__ import annotations

import math
from fractions import Fraction

from hardwire.compiler.core.sops import Affine, Select, SOp
from hardwire.compiler.layout import BOS, NOT_BOS, Layout
from hardwire.compiler.lower import feature_of


def is_numeric_select(sel) -> bool:
    """The selects encode.linear_queries rewrote: `==` against a linear-form query."""
    return isinstance(sel, Select) and sel.pred == "==" and isinstance(sel.queries, Affine)


def dyadic(lam: float) -> float:
    """The scale rounded up to a power of two: every weight (2 v lam, v^2, lam / 2) and every score is then exact
    in float32 for |k|, |q| < 2^10, so keys that tie in the reals tie in floats too (a mismatch pair k, 2q - k)."""
    return 2.0 ** math.ceil(math.log2(lam))


def q_squared_min(q: SOp) -> Fraction:
    """The least q^2 over the query's values (0 when 0 is one of them)."""
    return min(Fraction(v) ** 2 for v in q.values)


def base_terms(terms: tuple) -> tuple:
    """An Affine's terms with nested Affines expanded: ((coef, one-hot SOp), ...), constant separately."""
    out, const = [], Fraction(0)
    for c, x in terms:
        if isinstance(x, Affine):
            inner, k = base_terms(x.terms)
            out += [(c * ci, xi) for ci, xi in inner]
            const += c * (x.const + k)
        else:
            out.append((c, x))
    return tuple(out), const


def one_term(q: Affine) -> tuple[Fraction, SOp, Fraction] | None:
    """q as c * x + b over one value x (nested forms expanded), or None."""
    flat, k = base_terms(q.terms)
    if len(flat) != 1:
        return None
    (c, x), = flat
    return Fraction(c), x, Fraction(q.const) + k


def bos_column(sel: Select, layout: Layout) -> dict[int, float]:
    """BOS's score, in units of lam: q^2 - 1/2 read as a linear form where q is c x + b over one embedded value
    (exact, and its square linear in its dims too): 1/2 below the match, 1/2 above every mismatch, for every query,
    matched or not. Otherwise the constant q2min - 1/2, which is only right where a match always exists
    (encode.always_matched); a snapped MLP-made term is not squared, so its float error is not either."""
    single = one_term(sel.queries)
    if single is not None and feature_of(single[1]) in ("token", "position"):
        c, x, b = single
        col = {BOS: 1.0, NOT_BOS: float(b * b - Fraction(1, 2))}
        for power, coef in ((2, c * c), (1, 2 * c * b)):
            if coef:
                for dim, k in layout.number(x, power).items():
                    col[dim] = col.get(dim, 0.0) + float(coef) * k
        return col
    return {NOT_BOS: float(q_squared_min(sel.queries) - Fraction(1, 2)), BOS: 1.0}


def numeric_score_columns(sel: Select, layout: Layout) -> tuple[list, list]:
    """Query and key columns of lam (2 k q - k^2) on real keys and lam (q^2 - 1/2) on BOS (bos_column; BOS's own
    query scores BOS alone, at lam)."""
    k1, k2 = layout.number(sel.keys), layout.number(sel.keys, 2)
    q1 = {dim: 2.0 * c for dim, c in layout.number(sel.queries).items()}
    cols_q = [q1, {NOT_BOS: -1.0}, bos_column(sel, layout)]
    cols_k = [k1, k2, {BOS: 1.0}]
    return cols_q, cols_k

