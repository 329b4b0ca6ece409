"""Tracr's RASP as .hw source: `to_hw` translates a `tracr.rasp` expression graph (hardwire.from_rasp compiles it).

Every Map, SequenceMap and lambda predicate becomes a table tabulated over its inputs' value sets, which hardwire's
own checker reports (the partial program is elaborated, so the sets are exactly the ones the compiler uses);
linear maps, comparisons and aggregates become the language's own forms. Python floats out of user lambdas become
fractions (limit_denominator(10**6)); the lambdas themselves see hardwire's exact values (ints, Fractions).

Long: one translator with a rule per RASP node kind (maps, predicates as truth tables, aggregates with
their defaults and fallbacks) and the elaboration it asks value sets of; splitting it would scatter one walk.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import SCALAR, value_key

RESERVED = {"program", "vocab", "max_len", "exact_len", "causal", "distinct", "param", "require", "output", "table",
            "or", "and", "not", "true", "false", "in", "generate", "stop", "state", "loop", "until", "emit", "when",
            "if", "then", "else", "tokens", "indices", "length", "map", "select", "aggregate", "width", "scalar",
            "onehot", "latest", "earliest", "word", "default", "min", "max", "abs"}
COMPARISONS = {"EQ": "==", "LT": "<", "LEQ": "<=", "GT": ">", "GEQ": ">=", "NEQ": "!=", "TRUE": "true",
               "FALSE": "false"}
OPS = {"==": lambda k, q: k == q, "<": lambda k, q: k < q, "<=": lambda k, q: k <= q, ">": lambda k, q: k > q,
       ">=": lambda k, q: k >= q, "!=": lambda k, q: k != q}
ONE_POSITION = "must select at most one position"   # the checker's refusal of an unprovable one-hot aggregate
DENOMINATOR = 10 ** 6                                # a float from a lambda is read as the nearest such fraction


def tracr_rasp():
    """tracr.rasp.rasp, or a HardwireError saying how to install it."""
    try:
        from tracr.rasp import rasp
    except ImportError:
        raise HardwireError("the RASP front end needs Tracr: pip install 'hardwire[tracr]' (tracr-pypi)") from None
    return rasp


def exact(v: Any) -> Any:
    """A value out of a RASP lambda as a hardwire value: floats (and numpy numbers) as fractions, whole ones ints."""
    if isinstance(v, tuple):
        return tuple(exact(x) for x in v)
    if v is None or isinstance(v, (bool, str)):
        return v
    if hasattr(v, "item") and not isinstance(v, (int, Fraction)):   # a numpy scalar
        v = v.item()
        if isinstance(v, bool):
            return v
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{v} has no exact value")
        v = Fraction(v).limit_denominator(DENOMINATOR)
    if isinstance(v, Fraction) and v.denominator == 1:
        return int(v)
    if isinstance(v, (int, Fraction)):
        return v
    raise ValueError(f"{v!r} ({type(v).__name__}) is not a value hardwire holds")


def lit(v: Any) -> str:
    """A value as a .hw literal (in a table or an expression)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}"
    if isinstance(v, str):
        if '"' in v or "\n" in v:
            raise ValueError(f"the string {v!r} holds a quote or a line break, which a .hw string cannot")
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(lit(x) for x in v) + ")"
    raise ValueError(f"{v!r} has no .hw literal")


def sanitize(name: str) -> str:
    """A RASP name as a .hw name: letters, digits and _, not starting with a digit, not a keyword."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "v"
    if s[0].isdigit():
        s = "v_" + s
    return s


@dataclass
class Stmt:
    """One line of the generated program and the RASP label it comes from."""
    name: str
    text: str
    label: str
    output: bool = False

    def line(self) -> str:
        if self.text.startswith("table "):
            return self.text
        return f"{'output ' if self.output else ''}{self.name} = {self.text}"


@dataclass
class Translator:
    """The walk over a RASP graph: one statement per node, value sets asked of hardwire's checker."""
    vocab: tuple
    max_len: int
    causal: bool = False
    name: str = "rasp"
    distinct: bool = False
    stmts: list = field(default_factory=list)
    done: dict = field(default_factory=dict)      # id(expr) -> the .hw name holding it
    used: set = field(default_factory=set)
    means: dict = field(default_factory=dict)     # a mean's name -> (its selector, its scalar value), default 0
    _defs: dict | None = None

    # ---- the program text and what the checker says of it ---------------------------------------------------
    def header(self) -> list[str]:
        vocab = ", ".join(lit(v) for v in sorted(self.vocab, key=value_key))
        return [f"program {sanitize(self.name)}", f"vocab {{{vocab}}}", f"max_len {self.max_len}"] + (
            ["causal"] if self.causal else []) + (["distinct"] if self.distinct else [])

    def text(self, probe: bool = False) -> str:
        lines = self.header() + [s.line() for s in self.stmts] + (["output probe_ = 0"] if probe else [])
        return "\n".join(lines) + "\n"

    def label_at(self, line: int | None) -> str | None:
        """The RASP label of the generated line `line` (1-based), if a statement."""
        i = (line or 0) - 1 - len(self.header())
        return self.stmts[i].label if 0 <= i < len(self.stmts) else None

    def relabel(self, e: HardwireError) -> HardwireError:
        """The checker's error on generated text, said of the RASP expression it came from."""
        label = self.label_at(e.line)
        if label is None:
            return e
        line = self.text().splitlines()[e.line - 1]
        return HardwireError(f"RASP expression {label!r} cannot be compiled: {e.message} (in the generated line "
                             f"`{line.strip()[:160]}`)")

    def info(self, name: str):
        """What the checker knows of `name`: its SOp (values, encoding), or the constant it is."""
        if self._defs is None:
            from hardwire.compiler.check.elaborate import check_source
            try:
                prog = check_source(self.text(probe=True), "<rasp>")
            except HardwireError as e:
                raise self.relabel(e) from None
            self._defs = dict(prog.defs)
        if name in ("tokens", "indices") and name not in self._defs:   # built in, so not among the definitions
            from hardwire.compiler.check.elaborate import check_source
            text = self.text(probe=True).replace("output probe_ = 0", f"output probe_ = {name}")
            self._defs[name] = check_source(text, "<rasp>").outputs["probe_"]
        return self._defs[name]

    def values(self, name: str) -> tuple:
        """Every value `name` takes but none."""
        v = self.info(name)
        return tuple(x for x in v.values if x is not None) if hasattr(v, "values") else (v,)

    def encoding(self, name: str) -> str:
        v = self.info(name)
        return v.encoding if hasattr(v, "encoding") else "const"

    def fresh(self, base: str) -> str:
        s = sanitize(base)
        if s in RESERVED or s in self.used:
            n = 1
            while f"{s}_{n}" in self.used or f"{s}_{n}" in RESERVED:
                n += 1
            s = f"{s}_{n}"
        self.used.add(s)
        return s

    def rename(self, old: str, new: str) -> None:
        """Every use of the name old (outside string literals) is new."""
        pat = re.compile(r'"[^"\n]*"|\b' + re.escape(old) + r"\b")
        for st in self.stmts:
            st.text = pat.sub(lambda m: m.group(0) if m.group(0).startswith('"') else new, st.text)
            if st.name == old:
                st.name = new
        self.done = {k: new if v == old else v for k, v in self.done.items()}
        self._defs = None

    def emit(self, base: str, text: str, label: str) -> str:
        """A statement `name = text`; an equal text already emitted is reused (two equal selects: one head)."""
        for st in self.stmts:
            if st.text == text:
                return st.name
        name = self.fresh(base)
        self.stmts.append(Stmt(name, text, label))
        self._defs = None
        return name

    def table(self, base: str, mapping: dict, label: str) -> str:
        """A `table` statement of mapping (keys: values or tuples of values); its name."""
        body = ", ".join(f"{lit(k)} -> {lit(v)}" for k, v in mapping.items())
        for st in self.stmts:
            if st.text.startswith("table ") and st.text.endswith(f" {{ {body} }}"):
                return st.name
        name = self.fresh(base + "_t")
        self.stmts.append(Stmt(name, f"table {name} {{ {body} }}", label))
        self._defs = None
        return name

    # ---- the walk ----------------------------------------------------------------------------------------
    def visit(self, expr) -> str:
        """The .hw name holding expr's value (or selector), translating its children first."""
        got = self.done.get(id(expr))
        if got is not None:
            return got
        rasp = tracr_rasp()
        label = expr.label
        try:
            name = self.node(rasp, expr, label)
        except ValueError as e:
            raise HardwireError(f"RASP expression {label!r} cannot be compiled: {e}") from None
        self.done[id(expr)] = name
        return name

    def node(self, rasp, expr, label: str) -> str:
        base = expr.name
        if isinstance(expr, rasp.Selector):
            return self.selector(rasp, expr, label)
        numerical = rasp.is_numerical(expr)
        if isinstance(expr, (rasp.TokensType, rasp.IndicesType)):
            prim = "tokens" if isinstance(expr, rasp.TokensType) else "indices"
            return self.emit(f"{prim}_num", f"scalar({prim})", label) if numerical else prim
        if isinstance(expr, rasp.LengthType):
            return self.coerce(self.emit("length_", "length", label), numerical, label)
        if isinstance(expr, rasp.Full):
            return self.emit(base, lit(exact(expr.fill)), label)
        if isinstance(expr, rasp.LinearSequenceMap):
            return self.linear(rasp, expr, base, numerical, label)
        if isinstance(expr, rasp.SequenceMap):
            return self.tabulate(expr.f, [expr.fst, expr.snd], base, numerical, label)
        if isinstance(expr, rasp.Map):
            return self.tabulate(expr.f, [expr.inner], base, numerical, label)
        if isinstance(expr, rasp.SelectorWidth):
            sel = self.visit(expr.selector)
            return self.coerce(self.emit(base, f"width({sel})", label), numerical, label)
        if isinstance(expr, rasp.Aggregate):
            return self.aggregate(rasp, expr, base, numerical, label)
        raise ValueError(f"{type(expr).__name__} has no hardwire form (a ConstantSOp depends on the input's length "
                         "only through its literal list; write it as a Map of indices)")

    def coerce(self, name: str, numerical: bool, label: str) -> str:
        """name in the RASP encoding asked for: scalar(...) for numerical, onehot(...) for categorical."""
        enc = self.encoding(name)
        if enc == "const":
            return name
        if numerical and enc != SCALAR:
            bad = [v for v in self.values(name) if not isinstance(v, (int, Fraction))]
            if bad:
                raise ValueError(f"it is numerical, but takes the value {bad[0]!r}, which is not a number")
            return self.emit(f"{name}_num", f"scalar({name})", label)
        if not numerical and enc == SCALAR:
            return self.emit(f"{name}_cat", f"onehot({name})", label)
        return name

    def hot(self, name: str, label: str) -> str:
        """name one-hot (a select and all but one input of a map read one-hot values)."""
        return self.coerce(name, False, label)

    def tabulate(self, f, children: list, base: str, numerical: bool, label: str) -> str:
        """A Map or SequenceMap: f tabulated over its inputs' value sets, looked up as `t[x, y]`."""
        ins = [self.visit(c) for c in children]
        scalars = [i for i, n in enumerate(ins) if self.encoding(n) == SCALAR]
        for i in scalars[1:]:   # a map reads one scalar at most: the others one-hot
            ins[i] = self.hot(ins[i], label)
        domains = [self.values(n) for n in ins]
        size = 1
        for d in domains:
            size *= len(d)
        if size > VALUE_BUDGET:
            raise ValueError(f"its inputs take {size:,} combinations of values, over the budget of {VALUE_BUDGET:,}")
        mapping, keys, identity = {}, set(), len(ins) == 1
        for combo in itertools.product(*domains):
            try:
                out = exact(f(*combo))
            except (ArithmeticError, TypeError, ValueError, IndexError, KeyError):
                identity = False   # a combination the inputs never take together (or RASP would fail on): none
                continue
            key = combo if len(combo) > 1 else combo[0]
            if out is None:
                identity = False
                continue
            identity = identity and value_key(out) == value_key(key)
            keys.add(value_key(key))
            mapping[key] = out
        if len(keys) != len(mapping):
            raise ValueError("its inputs hold both a number and the boolean equal to it, which one table cannot key")
        if identity:
            return self.coerce(ins[0], numerical, label)
        if not mapping:
            raise ValueError("its function fails (or gives None) on every value its inputs take")
        t = self.table(base, mapping, label)
        return self.coerce(self.emit(base, f"{t}[{', '.join(ins)}]", label), numerical, label)

    def linear(self, rasp, expr, base: str, numerical: bool, label: str) -> str:
        """LinearSequenceMap: `a * x + b * y`, residual arithmetic on scalars (a map on one-hot values)."""
        x, y = (self.coerce(self.visit(c), numerical, label) for c in (expr.fst, expr.snd))
        a, b = exact(expr.fst_fac), exact(expr.snd_fac)
        mx, my = self.means.get(x), self.means.get(y)
        if numerical and mx and my and mx[0] == my[0]:   # a*mean(u) + b*mean(v) over one selector: mean(a*u + b*v)
            x, y = mx[1], my[1]
            return self.mean(mx[0], self.emit(base + "_step", linear_text(a, x, b, y), label), 0, base, label)
        return self.coerce(self.emit(base, linear_text(a, x, b, y), label), numerical, label)

    # ---- selectors -----------------------------------------------------------------------------------------
    def selector(self, rasp, expr, label: str) -> str:
        base = expr.name
        if isinstance(expr, rasp.Select):
            return self.select(rasp, expr, base, label)
        if isinstance(expr, (rasp.SelectorAnd, rasp.SelectorOr)):
            a, b = self.visit(expr.fst), self.visit(expr.snd)
            return self.emit(base, f"{a} {'&' if isinstance(expr, rasp.SelectorAnd) else '|'} {b}", label)
        if isinstance(expr, rasp.SelectorNot):
            return self.emit(base, f"!{self.visit(expr.inner)}", label)
        raise ValueError(f"{type(expr).__name__} has no hardwire form (a ConstantSelector is a literal matrix)")

    def select(self, rasp, expr, base: str, label: str) -> str:
        """Select: a Comparison as itself; a lambda as the comparison it equals over the value sets, else as its
        truth table, a custom predicate `(a, b) -> t[a, b]` (one head: the table is its query-key product)."""
        k, q = (self.hot(self.visit(c), label) for c in (expr.keys, expr.queries))
        pred = expr.predicate
        if isinstance(pred, rasp.Comparison):
            return self.emit(base, f"select({k}, {q}, {COMPARISONS[pred.name]})", label)
        ks, qs = self.values(k), self.values(q)
        if len(ks) * len(qs) > VALUE_BUDGET:
            raise ValueError(f"its predicate is a lambda over {len(ks) * len(qs):,} key-query pairs, over the budget "
                             f"of {VALUE_BUDGET:,}")
        truth = {}
        for a in ks:
            for b in qs:
                try:
                    truth[a, b] = bool(pred(a, b))
                except (ArithmeticError, TypeError, ValueError):
                    truth[a, b] = False
        return self.emit(base, self.predicate(k, q, ks, qs, truth, base, label), label)

    def predicate(self, k: str, q: str, ks: tuple, qs: tuple, truth: dict, base: str, label: str) -> str:
        """The cheapest select text whose predicate is `truth` over ks x qs."""
        vals = set(truth.values())
        if vals <= {True}:
            return f"select({k}, {q}, true)"
        if vals <= {False}:
            return f"select({k}, {q}, false)"
        for op, fn in OPS.items():
            try:
                if all(fn(a, b) == t for (a, b), t in truth.items()):
                    return f"select({k}, {q}, {op})"
            except TypeError:
                continue
        t = self.table(base + "_pred", {(a, b): True for (a, b), v in truth.items() if v}, label)   # missing: false
        return f"select({k}, {q}, (a, b) -> {t}[a, b])"

    # ---- aggregates ----------------------------------------------------------------------------------------
    def aggregate(self, rasp, expr, base: str, numerical: bool, label: str) -> str:
        """Aggregate: a mean of a numerical value (a default d as `aggregate(s, x - d) + d`), the selected value of
        a categorical one, or RASP's mean of the selected numbers where hardwire cannot prove one is selected."""
        sel = self.visit(expr.selector)
        x = self.visit(expr.sop)
        d = exact(expr.default)
        if numerical or rasp.is_numerical(expr.sop):
            if d is None and not never_empty(rasp, expr.selector):
                raise ValueError("it takes a mean with default None, which is None where nothing is selected, and "
                                 "hardwire's mean is a number everywhere: give default=0")
            return self.coerce(self.mean(sel, x, d or 0, base, label), numerical, label)
        text = f"aggregate({sel}, {x})" if d is None else f"default(aggregate({sel}, {x}), {lit(d)})"
        name = self.emit(base, text, label)
        try:
            self.info(name)
            return name
        except HardwireError as e:
            if ONE_POSITION not in e.message:
                raise
            self.stmts.pop()
            self.used.discard(name)
            self._defs = None
        nums = self.values(x)
        if not all(isinstance(v, (int, Fraction)) for v in nums):   # RASP itself fails on a mean of these
            raise ValueError(f"it is categorical, hardwire cannot prove it selects one position, and its values "
                             f"are not all numbers (RASP fails on a mean of {nums[0]!r})")
        if d is not None:
            return self.hot(self.mean(sel, x, d, base, label), label)
        sentinel = max(nums) + 1   # no mean of these: it marks an empty selection, which the table maps to none
        m = self.mean(sel, x, sentinel, base + "_mean", label)
        hot = self.hot(m, label)
        t = self.table(base, {v: v for v in self.values(hot) if v != sentinel}, label)
        return self.emit(base, f"{t}[{hot}]", label)

    def mean(self, sel: str, x: str, d, base: str, label: str) -> str:
        """The mean of x over sel, d where nothing is selected."""
        x = self.coerce(x, True, label)
        text = f"aggregate({sel}, {x})" if d == 0 else f"aggregate({sel}, {x} - {lit(d)}) + {lit(d)}"
        name = self.emit(base, text, label)
        if d == 0:
            self.means[name] = (sel, x)
        return name


def linear_text(a, x: str, b, y: str) -> str:
    """`a * x + b * y`, with coefficients 1 and -1 left out."""
    def term(c, v: str) -> str:
        return v if c == 1 else f"-{v}" if c == -1 else f"{lit(c)} * {v}"
    return f"{term(a, x)} + {term(b, y)}".replace("+ -", "- ")


def never_empty(rasp, sel) -> bool:
    """Does sel select a key for every query (so an aggregate's default never shows)?"""
    if isinstance(sel, rasp.Select) and isinstance(sel.predicate, rasp.Comparison):
        if sel.predicate.name == "TRUE":
            return True
        same = sel.keys is sel.queries or (type(sel.keys) is type(sel.queries)
                                            and isinstance(sel.keys, (rasp.TokensType, rasp.IndicesType)))
        return same and sel.predicate.name in ("EQ", "LEQ", "GEQ")
    if isinstance(sel, rasp.SelectorOr):
        return never_empty(rasp, sel.fst) or never_empty(rasp, sel.snd)
    return False


def translate(expr, vocab, max_len: int, causal: bool = False, name: str = "rasp", distinct: bool = False
              ) -> Translator:
    """The translation of expr: its statements, the last one the output (see to_hw)."""
    rasp = tracr_rasp()
    if not isinstance(expr, rasp.SOp):
        raise HardwireError(f"from_rasp compiles a RASP SOp (a value at every position), got {type(expr).__name__}")
    try:
        vocab = tuple(exact(v) for v in vocab)
    except ValueError as e:
        raise HardwireError(f"the vocab cannot be written in .hw: {e}") from None
    tr = Translator(vocab, max_len, causal, name, distinct)
    root = tr.visit(expr)
    last = tr.stmts[-1] if tr.stmts else None
    if last is not None and last.name == root and not last.text.startswith("table "):
        want = sanitize(expr.name)
        if last.name != want and want not in RESERVED:   # a coercion's name: the output takes the RASP name
            if want in tr.used:
                tr.rename(want, tr.fresh(want + "_raw"))
            tr.rename(last.name, want)
            tr.used.add(want)
        last.output = True
    else:   # the root is tokens or indices themselves, or a value named earlier
        tr.stmts.append(Stmt(tr.fresh(expr.name), root, expr.label, output=True))
    return tr


def to_hw(expr, vocab, max_len: int, causal: bool = False, name: str = "rasp", distinct: bool = False) -> str:
    """A `tracr.rasp` SOp as the text of a .hw program whose one output is expr (named by expr's label).

    vocab: the input tokens (a set or list); max_len: the longest input; causal: the `causal` header (Tracr's
    causal compilation); distinct: the `distinct` header (inputs never repeat a token, so tokens are unique keys, as
    Tracr's make_sort_unique assumes). Errors: HardwireError naming the RASP expression's label and why.
    """
    return translate(expr, vocab, max_len, causal, name, distinct).text()


def same_value(rasp_value, hw_value, tol: float = 1e-9) -> bool:
    """Is hardwire's exact value RASP's (a float within tol of the fraction; None, strings, booleans equal)?"""
    if rasp_value is None or hw_value is None:
        return rasp_value is None and hw_value is None
    if isinstance(rasp_value, str) or isinstance(hw_value, str):
        return rasp_value == hw_value
    if isinstance(rasp_value, tuple) and isinstance(hw_value, tuple):
        return len(rasp_value) == len(hw_value) and all(same_value(a, b, tol) for a, b in zip(rasp_value, hw_value))
    try:
        return abs(float(rasp_value) - float(hw_value)) <= tol
    except (TypeError, ValueError):
        return rasp_value == hw_value


def same_outputs(rasp_values: list, hw_values: list, tol: float = 1e-9) -> bool:
    """same_value at every position."""
    return len(rasp_values) == len(hw_values) and all(same_value(a, b, tol) for a, b in zip(rasp_values, hw_values))
