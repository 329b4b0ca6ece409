"""Sequence operations: the typed program. Each SOp knows its finite value set and encoding."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

ONEHOT, SCALAR = "onehot", "scalar"


@dataclass(eq=False)
class SOp:
    """A value at every position; `values` is every value it can take (sorted, finite)."""
    label: str
    values: tuple
    encoding: str
    line: int = 0
    column: int = 0

    def __hash__(self) -> int:
        return id(self)


@dataclass(eq=False)
class Tokens(SOp):
    pass


@dataclass(eq=False)
class Indices(SOp):
    pass


@dataclass(eq=False)
class Const(SOp):
    value: Any = None


@dataclass(eq=False)
class Map(SOp):
    """Elementwise function of its inputs; `text` is its source for explanations."""
    fn: Callable = None
    inputs: tuple = ()
    text: str = ""


@dataclass(eq=False)
class Select:
    """Selector: query position q selects key position k when pred(keys[k], queries[q])."""
    keys: SOp
    queries: SOp
    pred: str


@dataclass(eq=False)
class SelNot:
    inner: Any


@dataclass(eq=False)
class SelAnd:
    left: Any
    right: Any


@dataclass(eq=False)
class SelOr:
    left: Any
    right: Any


@dataclass(eq=False)
class Aggregate(SOp):
    """Mean of a scalar over the selected keys (0 if none); the one selected value for onehot."""
    selector: Any = None
    value: SOp = None


@dataclass(eq=False)
class Width(SOp):
    """Number of selected keys."""
    selector: Any = None


@dataclass
class Table:
    """A finite function written as a literal: `table delta { (A, 0) -> (B, 1, R), ... }`."""
    name: str
    mapping: dict


@dataclass
class Program:
    """A checked program: header facts and the named outputs."""
    name: str
    vocab: tuple
    max_len: int
    causal: bool
    distinct: bool
    params: dict
    outputs: dict = field(default_factory=dict)
    defs: dict = field(default_factory=dict)
    file: str | None = None


PREDICATES: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda k, q: k == q, "!=": lambda k, q: k != q,
    "<": lambda k, q: k < q, "<=": lambda k, q: k <= q,
    ">": lambda k, q: k > q, ">=": lambda k, q: k >= q,
    "true": lambda k, q: True, "false": lambda k, q: False,
}


def pred_holds(pred: str, key: Any, query: Any) -> bool:
    """Predicates are False on None (an empty aggregate) and on values that do not compare."""
    if key is None or query is None:
        return pred == "true"
    try:
        return bool(PREDICATES[pred](key, query))
    except TypeError:
        return False


def sort_values(values) -> tuple:
    """A deterministic order for a value set (None first, then by type name and value)."""
    return tuple(sorted(set(values), key=lambda v: (v is not None, type(v).__name__ if not
                                                   isinstance(v, (int, Fraction)) or isinstance(v, bool)
                                                   else "num", v if v is not None else 0)))


def selector_atoms(sel) -> list[Select]:
    """Every select() inside a selector expression."""
    if isinstance(sel, Select):
        return [sel]
    if isinstance(sel, SelNot):
        return selector_atoms(sel.inner)
    return selector_atoms(sel.left) + selector_atoms(sel.right)


def selector_holds(sel, key_vals: dict, query_vals: dict) -> bool:
    """Evaluate a selector given the values of each atom's key and query at a (k, q) pair."""
    if isinstance(sel, Select):
        return pred_holds(sel.pred, key_vals[id(sel.keys)], query_vals[id(sel.queries)])
    if isinstance(sel, SelNot):
        return not selector_holds(sel.inner, key_vals, query_vals)
    a = selector_holds(sel.left, key_vals, query_vals)
    b = selector_holds(sel.right, key_vals, query_vals)
    return (a and b) if isinstance(sel, SelAnd) else (a or b)
