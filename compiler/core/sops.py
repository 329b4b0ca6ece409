"""Sequence operations: the typed program. Each SOp knows its finite value set and encoding."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

ONEHOT, SCALAR, WORD = "onehot", "scalar", "word"
CODE = "code"  # a value only outputs read, held as one number: its index in `values` (encode.codes)


@dataclass(eq=False)
class SOp:
    """A value at every position; `values` is every value it can take (sorted, finite).

    A WORD value is a `bits`-bit two's complement integer kept as bits; its values are not listed.
    """
    label: str
    values: tuple
    encoding: str
    line: int = 0
    column: int = 0
    bits: int = 0
    vrange: tuple | None = None  # for a word: (min, max) when known, so its MLPs skip impossible intervals
    square: bool = False  # a scalar number that also holds its square (part ".sq"), for an equality head's k^2

    def __hash__(self) -> int:
        return id(self)

    def value_index(self, v) -> int:
        """The position of v in `values`, by type and value (0 and false are two values); ValueError if absent."""
        found = self.__dict__.get("_value_index")
        if found is None or found[0] is not self.values:
            found = (self.values, {value_key(x): i for i, x in enumerate(self.values)})
            self.__dict__["_value_index"] = found
        try:
            return found[1][value_key(v)]
        except KeyError:
            raise ValueError(f"{v!r} is not in the value set of {self.label}") from None

    def holds(self, v) -> bool:
        """Is v in `values` (by type and value)?"""
        try:
            self.value_index(v)
        except ValueError:
            return False
        return True


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
class Affine(SOp):
    """sum(coef * x) + const over scalars: no block computes it, every reader reads the linear form."""
    terms: tuple = ()  # ((coef, scalar SOp), ...)
    const: Fraction = Fraction(0)


@dataclass(eq=False)
class Norm(SOp):
    """`layernorm(x, eps)`: a LayerNorm over the pair (x, -x) turns the sign of a scalar into a boolean.

    LN_eps(x, -x) = (a, -a) with a = x / sqrt(x^2 + eps): exactly +-1 when eps is 0, whatever |x| is.
    """
    x: SOp = None
    eps: Fraction = Fraction(0)

    def margin(self) -> float:
        """The least |a| over x's values: 1 at eps 0; below 1 the boolean is soft."""
        m = min(abs(float(v)) for v in self.x.values)
        return m / (m * m + float(self.eps)) ** 0.5


@dataclass
class Lin:
    """sum(coef * x) + const, wrapped to the word: a word expression not yet held in the residual."""
    terms: tuple = ()  # ((coef, SOp), ...)
    const: int = 0


@dataclass(eq=False)
class Mux(Map):
    """A value chosen by cases ((guard, value), ...): the first case whose guard is true (None: always).

    Guards are exclusive by construction. With a `target` register it is a loop commit: it overwrites
    that register's dimensions, copying with unit steps, which re-quantizes them.
    """
    cases: tuple = ()
    target: SOp = None
    polarity: tuple = ()  # per case: gate on the guard's True dimension, (False) on its False one, ("first") on
    #                       its True one less the earlier guards', or ("none", an `else`) on not_bos less theirs


@dataclass(eq=False)
class WordMux(Mux):
    """A word mux: each case's value is a Lin."""


@dataclass(eq=False)
class OneHotMux(Mux):
    """A one-hot mux: each case's value is a one-hot SOp or a constant."""


@dataclass(eq=False)
class WordTest(Map):
    """A boolean: `op(v, const)` where v is the Lin's value, wrapped to the word unless `wrapped` is False."""
    lin: Lin = None
    op: str = "=="
    const: int = 0
    wrapped: bool = True


@dataclass(eq=False)
class Register(SOp):
    """A loop's state: a word at every position, `init` before the first pass, updated by `:=`."""
    init: SOp = None


@dataclass
class Loop:
    """`loop until halt { ... }`: `updates` as written (for the interpreter), `commits` as compiled
    (guarded by the halt test, plus the internal halt and emit registers the runtime reads)."""
    registers: list = field(default_factory=list)
    updates: dict = field(default_factory=dict)   # register label -> SOp
    halt: SOp | None = None
    emit: tuple | None = None                     # (value SOp, when SOp | None)
    commits: list = field(default_factory=list)   # WordMux with target
    flags: dict = field(default_factory=dict)     # "halted" / "emit_on" / "emit_val" -> Register


@dataclass(eq=False)
class Select:
    """Selector: query position q selects key position k when pred(keys[k], queries[q]).

    `pred` names one of PREDICATES; with `fn` it is a custom predicate's text (`(k, q) -> q == k + 2`) and
    fn(key value, query value) decides, none included. `origin` is the selector a combined select stands for.
    """
    keys: SOp
    queries: SOp
    pred: str
    fn: Callable[[Any, Any], bool] | None = None
    line: int = 0
    column: int = 0
    origin: Any = None


@dataclass(eq=False)
class SelNot:
    inner: Any
    line: int = 0  # where it is written, for messages about the selector
    column: int = 0


@dataclass(eq=False)
class SelAnd:
    left: Any
    right: Any
    line: int = 0
    column: int = 0


@dataclass(eq=False)
class SelOr:
    left: Any
    right: Any
    line: int = 0
    column: int = 0


@dataclass(eq=False)
class Aggregate(SOp):
    """Mean of a scalar over the selected keys (0 if none); the one selected value for onehot.

    With pick "latest" ("earliest"), the value at the last (first) selected key, whatever else is selected.
    """
    selector: Any = None
    value: SOp = None
    pick: str = ""  # "latest" or "earliest": an index term on the score picks one key


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
    word_bits: int = 0
    word_vocab: bool = False
    loop: Loop | None = None
    generate: str | None = None   # the output whose value at the last position is the next token
    stop: tuple = ()              # generation ends after appending one of these (or at max_len)
    exact_len: bool = False       # every input has exactly max_len tokens
    warnings: list = field(default_factory=list)  # HardwireErrors that compile anyway (refused with strict)
    source: str | None = None     # the text it was checked from: the weight file carries it (`certify`)

    def roots(self) -> list:
        """Every value the compiled model must compute: the outputs and the loop's commits."""
        return list(self.outputs.values()) + (list(self.loop.commits) if self.loop else [])


def wrap(v: int, bits: int) -> int:
    """v as a bits-wide two's complement integer."""
    half = 1 << (bits - 1)
    return ((v + half) % (1 << bits)) - half


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


def atom_holds(sel: Select, key: Any, query: Any) -> bool:
    """Does one select hold on a (key value, query value) pair: its custom fn, else its named predicate."""
    if sel.fn is not None:
        return sel.fn(key, query)
    return pred_holds(sel.pred, key, query)


def value_key(v) -> tuple:
    """None first, then by type name and value; tuples component by component, so mixed types still sort.

    Also a value's identity in a value set: Python has 0 == false and hash(0) == hash(false), but their keys
    differ, so a set keyed by value_key keeps both (an integer and the equal whole fraction share a key).
    """
    if v is None:
        return (False, "", 0)
    if isinstance(v, tuple):
        return (True, "tuple", tuple(value_key(x) for x in v))
    return (True, type(v).__name__ if not isinstance(v, (int, Fraction)) or isinstance(v, bool) else "num", v)


def is_flag(s: SOp) -> bool:
    """A boolean held as one dimension (encode.flags): 1 for true, 0 for false and at BOS."""
    return s.encoding == SCALAR and len(s.values) == 2 and all(isinstance(v, bool) for v in s.values)


def code_grid(n: int) -> list[float]:
    """A code's grid (CODE): the indices 0, 1, ..., n - 1 of its n values, as the runtime decodes them."""
    return [float(j) for j in range(n)]


def is_hot(s: SOp) -> bool:
    """Is s read by one indicator per value (one-hot, or a flag: Layout.hot), as a lookup reads its inputs?"""
    return s.encoding == ONEHOT or is_flag(s)


def sort_values(values) -> tuple:
    """A deterministic order for a value set; 0 and false (1 and true) are different values."""
    return tuple(sorted({value_key(v): v for v in values}.values(), key=value_key))


def is_length(s: SOp) -> bool:
    """A count c of keys with 1 <= c, the position's index below c, and every position below c a visible key:
    `width(select(x, y, true))` (the built-in `length`, Tracr's `make_length` on tokens, or in a causal program
    the prefix count i + 1), and `width(select(indices, indices, <=))`, which is i + 1 in any program."""
    sel = getattr(s, "selector", None)
    if not (isinstance(s, Width) and isinstance(sel, Select) and getattr(sel, "fn", None) is None):
        return False
    return sel.pred == "true" or (sel.pred == "<=" and isinstance(sel.keys, Indices) and sel.keys is sel.queries)


def combos(inputs) -> list[tuple]:
    """The combinations of the inputs' values that can meet at one position: the product of their value sets,
    less those where an index is not below `length`, or a length is 0 (a real position is always inside the
    input, and it sees at least itself)."""
    out = list(itertools.product(*(s.values for s in inputs)))
    lengths = [j for j, b in enumerate(inputs) if is_length(b)]
    pairs = [(i, j) for i, a in enumerate(inputs) if isinstance(a, Indices) for j in lengths]
    if lengths:
        out = [c for c in out if all(c[j] >= 1 for j in lengths) and all(c[i] < c[j] for i, j in pairs)]
    return out


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
        return atom_holds(sel, key_vals[id(sel.keys)], query_vals[id(sel.queries)])
    if isinstance(sel, SelNot):
        return not selector_holds(sel.inner, key_vals, query_vals)
    a = selector_holds(sel.left, key_vals, query_vals)
    b = selector_holds(sel.right, key_vals, query_vals)
    return (a and b) if isinstance(sel, SelAnd) else (a or b)
