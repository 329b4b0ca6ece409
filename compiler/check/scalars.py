"""Scalar arithmetic that stays linear, LayerNorm, and means over a known number of keys (checker side).

`x - y`, `3 * x`, `x / n` over scalars need no MLP: an Affine is read as a linear form of its terms'
dimensions by whatever consumes it. Its value set is worked out without enumerating the product when
every term's values are evenly spaced (an arithmetic progression), so long positional grids stay cheap.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import reduce

from hardwire.compiler.check.messages import called
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import ONEHOT, SCALAR, Affine, Norm, Select, SOp, sort_values

NUMBER = (int, Fraction)


def is_number(v) -> bool:
    return isinstance(v, NUMBER) and not isinstance(v, bool)


def frac_gcd(xs) -> Fraction:
    """The largest step that divides every fraction in xs (0 if all are 0)."""
    xs = [Fraction(x) for x in xs if x]
    if not xs:
        return Fraction(0)
    den = reduce(lambda a, b: a * b // math.gcd(a, b), (x.denominator for x in xs))
    return Fraction(reduce(math.gcd, (abs(int(x * den)) for x in xs)), den)


def progression(values: tuple) -> Fraction | None:
    """The step of an evenly spaced, sorted value set (0 for a single value), else None."""
    if len(values) < 2:
        return Fraction(0)
    step = Fraction(values[1]) - Fraction(values[0])
    if all(Fraction(b) - Fraction(a) == step for a, b in zip(values, values[1:])):
        return step
    return None


def normal(v: Fraction):
    return int(v) if v.denominator == 1 else v


class ScalarOps:
    """Mixin for the elaborator: Affine values, `layernorm`, exact means."""

    def affine_terms(self, a) -> tuple[dict, Fraction] | None:
        """({id: (coef, sop)}, const) for a scalar SOp, an Affine or a number; None for anything else."""
        if is_number(a):
            return {}, Fraction(a)
        if isinstance(a, Affine):
            return {id(x): (c, x) for c, x in a.terms}, a.const
        if isinstance(a, SOp) and a.encoding == SCALAR:
            return {id(a): (Fraction(1), a)}, Fraction(0)
        return None

    def affine_of(self, op: str, args: list, node) -> Affine | None:
        """`+ - * / neg` over scalars and numbers as an Affine, or None when the operation is not linear."""
        if not any(isinstance(a, SOp) for a in args):
            return None
        parts = [self.affine_terms(a) for a in args]
        if any(p is None for p in parts):
            return None
        if op == "neg":
            parts, signs = parts, [Fraction(-1)]
        elif op in ("+", "-"):
            signs = [Fraction(1), Fraction(1 if op == "+" else -1)]
        elif op == "*" and any(is_number(a) for a in args):
            k = Fraction(next(a for a in args if is_number(a)))
            parts, signs = [p for p, a in zip(parts, args) if not is_number(a)] or parts[:1], [k]
        elif op == "/" and is_number(args[1]) and args[1] != 0 and isinstance(args[0], SOp):
            parts, signs = parts[:1], [1 / Fraction(args[1])]
        else:
            return None
        terms: dict = {}
        const = Fraction(0)
        for (ts, c), sign in zip(parts, signs):
            const += sign * c
            for key, (coef, x) in ts.items():
                terms[key] = (terms.get(key, (Fraction(0), x))[0] + sign * coef, x)
        kept = tuple((c, x) for c, x in terms.values() if c != 0)
        if not kept:
            return None  # it cancelled out to a constant: let the generic path fold it
        m = node.meta
        return Affine("_affine", self.affine_values(kept, const, node), SCALAR, m.line, m.column,
                      terms=kept, const=const)

    def affine_values(self, terms: tuple, const: Fraction, node) -> tuple:
        """Every value sum(c * x) + const can take: by enumeration when small, else as a progression."""
        if math.prod(len(x.values) for _, x in terms) <= VALUE_BUDGET:
            sums = {const}
            for c, x in terms:
                sums = {s + c * Fraction(v) for s in sums for v in x.values}
            return sort_values(normal(s) for s in sums)
        steps = [progression(x.values) for _, x in terms]
        if any(s is None for s in steps):
            raise self.err(f"a sum of scalars with {math.prod(len(x.values) for _, x in terms)} value combinations "
                           f"(over the budget of {VALUE_BUDGET}) whose values are not evenly spaced", node)
        lo = const + sum(min(c * Fraction(x.values[0]), c * Fraction(x.values[-1])) for c, x in terms)
        hi = const + sum(max(c * Fraction(x.values[0]), c * Fraction(x.values[-1])) for c, x in terms)
        step = frac_gcd(abs(c) * s for (c, _), s in zip(terms, steps))
        count = int((hi - lo) / step) + 1 if step else 1
        if count > VALUE_BUDGET:
            raise self.err(f"a sum of scalars can take {count} values, over the budget of {VALUE_BUDGET}", node)
        return tuple(normal(lo + k * step) for k in range(count))

    def layernorm(self, args: list, node) -> Norm:
        """`layernorm(x, eps)`: the boolean x > 0, computed by a LayerNorm over (x, -x) with that epsilon."""
        if len(args) != 2 or not isinstance(args[0], SOp) or not is_number(args[1]) or args[1] < 0:
            raise self.err("layernorm takes a scalar and a non-negative epsilon: layernorm(x, 0)", node)
        x = args[0]
        if x.encoding != SCALAR:
            raise self.err("layernorm reads a scalar (use scalar(...))", node)
        if 0 in x.values:
            raise self.err("layernorm(x, eps) is the sign of x, so x must never be 0, but 0 is in its value set; "
                           "shift it by half a step (e.g. x - 1/(2n))", node)
        m = node.meta
        return Norm("_layernorm", (False, True), ONEHOT, m.line, m.column, x=x, eps=Fraction(args[1]))

    def check_soft_norms(self, roots: list) -> None:
        """A layernorm with eps > 0 leaves a soft boolean ((1 +- a)/2, a < 1): only an output may read it."""
        from hardwire.compiler.lower import inputs_of, walk
        for s in walk(roots):
            for x in inputs_of(s):
                if isinstance(x, Norm) and x.eps > 0:
                    raise HardwireError(f"{called(x)} is a layernorm with eps {x.eps}: its boolean is soft (margin "
                                        f"{x.margin():.3g} < 1), so only an output may read it; use eps 0",
                                        self.file, s.line or x.line, s.column or x.column)

    def selects_every_key(self, sel) -> bool:
        return isinstance(sel, Select) and sel.pred == "true"

    def exact_means(self, values: tuple, count: int, node) -> tuple:
        """Means over exactly `count` keys: sums of count values over count (a progression superset)."""
        vals = sorted(Fraction(v) for v in values)
        step = frac_gcd(v - vals[0] for v in vals)
        lo, hi = count * vals[0], count * vals[-1]
        n = int((hi - lo) / step) + 1 if step else 1
        if n > VALUE_BUDGET:
            raise self.err(f"a mean over {count} keys can take {n} values, over the budget of {VALUE_BUDGET}", node)
        return tuple(normal((lo + k * step) / count) for k in range(n))
