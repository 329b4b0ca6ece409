"""Source text -> checked Program: parse with Lark, resolve names, infer value sets and encodings.

Long: the Elaborator has one method per grammar rule, so the language's typing rules read in grammar order; the
rules for scalars, words and loops are mixins beside it (scalars.py, words.py, loops.py), and so are functions,
folds, lists and ranges, which it expands before anything reaches the IR (functions.py).
"""
from __future__ import annotations

import operator
import re
from fractions import Fraction
from importlib import resources
from typing import Any

import lark
from hardwire.compiler.check.functions import Frame, Function, FunctionOps, ListValue, is_constant
from hardwire.compiler.check.loops import LoopOps
from hardwire.compiler.check.messages import (
    COMPILE_TIME,
    OpFailure,
    comment_hint,
    functions,
    kind,
    kinds,
    op_failure,
    plural,
    refuse_slash_comments,
    shown,
    shown_set,
    suggest,
    syntax_error,
)
from hardwire.compiler.check.primitives import ELEMENTWISE
from hardwire.compiler.check.scalars import ScalarOps
from hardwire.compiler.check.selects import SelectOps
from hardwire.compiler.check.words import Cases, WordOps, is_word
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import LONG_MAX_LEN, MAX_LEN_LIMIT, VALUE_BUDGET
from hardwire.compiler.core.sops import (
    ONEHOT,
    SCALAR,
    WORD,
    Affine,
    Aggregate,
    Const,
    Indices,
    Lin,
    Map,
    Program,
    Register,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Table,
    Tokens,
    Width,
    combos,
    pred_holds,
    selector_atoms,
    sort_values,
)

_PARSER: lark.Lark | None = None


def parser() -> lark.Lark:
    global _PARSER
    if _PARSER is None:
        grammar = resources.files("hardwire.compiler.check").joinpath("grammar.lark").read_text()
        _PARSER = lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)
    return _PARSER


def parse(text: str, file: str = "<input>") -> lark.Tree:
    refuse_slash_comments(text, file)
    try:
        return parser().parse(text)
    except lark.UnexpectedInput as e:
        raise syntax_error(e, text, file) from None


def _num(v):
    return int(v) if isinstance(v, bool) else v


def _div(a, b):
    return Fraction(a) / Fraction(b)


BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
          "%": operator.mod, "/": _div, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
          "<=": operator.le, ">": operator.gt, ">=": operator.ge,
          "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b)}


def _lift(fn):
    """None (an empty categorical aggregate) propagates through every elementwise function."""
    def lifted(*args):
        if any(a is None for a in args):
            return None
        r = fn(*args)
        if isinstance(r, Fraction) and r.denominator == 1:
            return int(r)
        return r
    return lifted


def explained(op: str, fn):
    """fn, failing with OpFailure (the reason in words) instead of Python's TypeError or ZeroDivisionError."""
    def checked(*args):
        try:
            return fn(*args)
        except (ZeroDivisionError, TypeError, ValueError) as e:
            raise OpFailure(op_failure(op, args, e)) from None
    return checked


def over_sops(fn, args: list) -> tuple:
    """Bind the constant arguments of fn: returns (function of the SOp arguments only, those SOps)."""
    slots = [i for i, a in enumerate(args) if isinstance(a, SOp)]

    def bound(*vals):
        full = list(args)
        for i, v in zip(slots, vals):
            full[i] = v
        return fn(*full)
    return bound, [args[i] for i in slots]


class Elaborator(FunctionOps, WordOps, LoopOps, ScalarOps, SelectOps):
    def __init__(self, text: str, file: str, params: dict[str, int] | None, strict: bool = False):
        self.text, self.file, self.overrides, self.strict = text, file, dict(params or {}), strict
        self.env: dict[str, Any] = {}
        self.registers: list[Register] = []
        self.lambda_inputs: dict[str, str] = {}  # a lambda parameter -> the source text of the input map gives it
        self.fns: dict[str, Function] = {}  # the program's `def`s, by name
        self.frame: Frame | None = None  # the function body or fold element being checked, if any
        self.memo: dict[tuple, tuple] = {}  # a function and its arguments -> the value the call gave
        self.def_sites: dict[str, Any] = {}  # every `def` in the program, by name, for "defined below"
        self.fixed_params: dict[str, Any] = {}  # list and string params (fixed in the source, not in prog.params)
        self.prog = Program(name="program", vocab=(), max_len=0, causal=False, distinct=False, params={},
                            file=file)

    def err(self, msg: str, node) -> HardwireError:
        meta = getattr(node, "meta", None)
        line = getattr(meta, "line", None) if meta is not None and not getattr(meta, "empty", True) else None
        col = getattr(meta, "column", None) if line is not None else None
        if line is None and isinstance(node, lark.Token):
            line, col = node.line, node.column
        return HardwireError(msg, self.file, line, col)

    # ---- header and statements -------------------------------------------------
    def require(self, node) -> None:
        """`require cond[, "why"]`: a condition on the params, checked once every param is set, so that a program
        refuses the sizes it is wrong for (add_lsb's digit sums need 6-bit words) instead of wrapping silently."""
        cond, why = node.children
        text = self.text[cond.meta.start_pos:cond.meta.end_pos] if not cond.meta.empty else "the condition"
        try:
            ok, inner = self.expr(cond), ""
        except HardwireError as e:   # e.g. a name that is not a param: tokens and indices do not exist yet
            ok, inner = None, f" ({e.message})"
        if not isinstance(ok, bool):
            raise self.err(f"`require {text}` must be a true-or-false condition on params and constants{inner}",
                           cond)
        if not ok:
            known = {**self.prog.params, **self.fixed_params}
            used = sorted(n for n in known if re.search(rf"\b{n}\b", text))
            values = ", ".join(f"{n} = {shown(known[n])}" for n in used)
            reason = f": {str(why)[1:-1]}" if why is not None else ""
            raise self.err(f"this program requires {text}, and here {values or 'it is false'}{reason}", node)

    def run(self, tree: lark.Tree) -> Program:
        stmts, requires = [], []
        for node in tree.children:
            kind = node.data
            if kind == "h_program":
                self.prog.name = str(node.children[0])
            elif kind == "h_param":
                if isinstance(node.children[1], lark.Tree) or node.children[1].type == "STRING":
                    self.list_param(node)
                    continue
                name, val = str(node.children[0]), int(node.children[1])
                val = int(self.overrides.pop(name, val))
                self.prog.params[name] = val
                self.env[name] = val
            elif kind == "h_vocab":
                vocab = self.set_items(node.children)
                if len(sort_values(vocab)) != len(vocab):  # by type and value: 0 and false are two tokens
                    raise self.err("vocab lists a token twice", node)
                if len(vocab) > VALUE_BUDGET:  # refused here: the one-hot embedding alone is (n + 1)^2 weights
                    raise self.err(f"vocab lists {len(vocab):,} tokens, over the value budget of {VALUE_BUDGET:,} (a "
                                   f"one-hot embedding of that many is {(len(vocab) + 1) ** 2:,} weights, "
                                   f"{(len(vocab) + 1) ** 2 * 8 / 2 ** 30:,.0f} GiB to build)", node)
                self.prog.vocab = tuple(vocab)
            elif kind == "h_word":
                v = self.expr(node.children[0])
                if not isinstance(v, int) or not 2 <= v <= 53:
                    raise self.err(f"word width must be an integer from 2 to 53, got {shown(v)}", node)
                self.prog.word_bits = v
            elif kind == "h_vocab_word":
                self.prog.word_vocab = True
            elif kind == "h_max_len":
                v = self.expr(node.children[0])
                if not isinstance(v, int) or v < 1:
                    raise self.err(f"max_len must be a positive integer, got {shown(v)}", node)
                if v > LONG_MAX_LEN:
                    raise self.err(f"max_len {v} is over this compiler's limit of {LONG_MAX_LEN:,}", node)
                self.max_len_node = node
                self.prog.max_len = v
            elif kind == "h_causal":
                self.prog.causal = True
            elif kind == "h_generate":
                self.prog.generate = str(node.children[0])
                self.prog.stop = tuple(self.set_items(node.children[1:]))
                gen_node = node
            elif kind == "h_distinct":
                self.prog.distinct = True
            elif kind == "h_exact_len":
                self.prog.exact_len = True
            elif kind == "h_require":
                requires.append(node)
            else:
                stmts.append(node)
        if self.overrides:
            raise HardwireError(f"unknown param {sorted(self.overrides)[0]!r}; the program declares "
                                f"{sorted(self.prog.params) or 'none'}", self.file)
        for node in requires:
            self.require(node)
        if self.prog.word_vocab and not self.prog.word_bits:
            raise HardwireError("`vocab word` needs a word width: add a header line like `word 16`", self.file, 1, 1)
        if not self.prog.vocab and not self.prog.word_vocab:
            raise HardwireError("the program has no `vocab {...}` line", self.file, 1, 1)
        if not self.prog.max_len:
            raise HardwireError("the program has no `max_len N` line: add one after vocab, e.g. `max_len 16`, the "
                                "longest input it takes", self.file, 1, 1)
        self.def_sites = {str(n.children[0]): n for n in reversed(stmts) if n.data == "def_"}
        p = self.prog
        if p.word_vocab:
            self.env["tokens"] = Tokens("tokens", (), WORD, bits=p.word_bits)
        else:
            self.env["tokens"] = Tokens("tokens", sort_values(p.vocab), ONEHOT)
        if p.max_len <= MAX_LEN_LIMIT:   # past it, `indices` is refused where it is read (`name`)
            self.env["indices"] = Indices("indices", tuple(range(p.max_len)), ONEHOT)
        for node in stmts:
            if node.data == "table":
                self.table(node)
                continue
            if node.data == "state":
                self.state(node)
                continue
            if node.data == "loop":
                self.loop(node)
                continue
            if node.data == "def_":
                self.define(node)
                continue
            name_tok, body = node.children
            name = str(name_tok)
            if name in self.env and name not in ("tokens", "indices"):
                raise self.err(f"{name!r} is defined twice", name_tok)
            self.not_a_function(name, name_tok)
            if name in ("tokens", "indices", "length"):
                raise self.err(f"{name!r} is built in and cannot be redefined", name_tok)
            try:
                v = self.value(body) if node.data == "output" else self.expr(body)
            except RecursionError:
                raise self.err("this expression nests too deeply for the checker; split it into named steps",
                               body) from None
            if isinstance(v, SOp):
                if v.label.startswith("_"):
                    v.label = name
            self.env[name] = v
            p.defs[name] = v
            if node.data == "output":
                if isinstance(v, (Select, SelAnd, SelOr, SelNot)):
                    raise self.err("an output must be a value at every position, not a selector", body)
                if isinstance(v, Table):
                    raise self.err("an output must be a value at every position, not a table; index it, "
                                   "e.g. t[tokens]", body)
                if not isinstance(v, SOp):
                    v = Const(name, (v,), ONEHOT, value=v)
                if isinstance(v, Affine):  # an output needs dimensions of its own: one MLP re-reads the form
                    v = self.make_map(lambda x: x, [v], "copy", body)
                    v.label = name
                p.outputs[name] = v
        if not p.outputs:
            raise HardwireError("the program has no `output name = ...` line", self.file)
        if p.generate is not None:
            self.check_generate(gen_node)
        self.check_soft_norms(p.roots())
        return p

    def value(self, body, local=None):
        """An expression as a definition: a word expression is materialized only when used elsewhere."""
        v = self.expr(body, local)
        if isinstance(v, (Lin, Cases)):
            v = self.word_sop(v, body)
        return v

    def table(self, node) -> None:
        name_tok, *entries = node.children
        name = str(name_tok)
        if name in self.env:
            raise self.err(f"{name!r} is defined twice", name_tok)
        self.not_a_function(name, name_tok)
        mapping: dict = {}
        for e in entries:
            if e is None:
                continue
            key, val = (self.tvalue(c) for c in e.children)
            if key in mapping:
                raise self.err(f"table {name!r} lists the key {shown(key)} twice", e)
            mapping[key] = val
        self.env[name] = Table(name, mapping)

    def tvalue(self, node) -> Any:
        if node.data == "symbol":
            return str(node.children[0])
        if node.data == "tuple_":
            return tuple(self.tvalue(c) for c in node.children)
        return self.vlit(node)

    def vlit(self, node) -> Any:
        """A literal of a vocab or a table: also a negative integer (-3) or a fraction (1/3, -1/8, a whole one an
        integer as everywhere: 4/2 is 2)."""
        if node.data == "neg_int":
            return -int(node.children[0])
        if node.data in ("frac_lit", "neg_frac_lit"):
            num, den = (int(c) for c in node.children)
            if den == 0:
                raise self.err(f"the fraction {num}/0 divides by zero", node)
            v = Fraction(-num if node.data == "neg_frac_lit" else num, den)
            return int(v) if v.denominator == 1 else v
        return self.literal(node)

    def index(self, node, local) -> Any:
        base, *idx = node.children
        b = self.expr(base, local)
        args = [self.expr(i, local) for i in idx]
        if isinstance(b, Table):
            key_fn = (lambda *a: a) if len(args) > 1 else (lambda a: a)
            mapping = b.mapping
            fn = lambda *a: mapping.get(key_fn(*a))
            text = f"{b.name}[...]"
        else:
            if len(args) != 1 or not isinstance(args[0], int):
                raise self.err("a tuple value is indexed by one integer literal, e.g. step[0]", node)
            if isinstance(b, (str, ListValue)) and not -len(b) <= args[0] < len(b):
                raise self.err(f"{shown(b)} has {len(b)} element{'s' if len(b) != 1 else ''}, so no element "
                               f"[{args[0]}]", node)
            k = args[0]
            fn = lambda t: t[k]
            args, text = [b], f"[{k}]"

        def checked(*full):
            try:
                return fn(*full)
            except (IndexError, TypeError):
                v = full[0]
                raise OpFailure(f"{shown(v)} has {len(v)} components, so no component {text}" if isinstance(v, tuple)
                                else f"{shown(v)} is {kind(v)}, not a tuple with a component {text}") from None
        bound, sops = over_sops(checked, args)
        if not sops:
            try:
                return _lift(bound)()
            except OpFailure as e:
                raise self.err(f"`{self.source(node)}` cannot be computed: {e}", node) from None
        return self.make_map(bound, sops, text, node)

    def literal(self, node) -> Any:
        if node.data == "int_lit":
            try:
                return int(node.children[0])
            except ValueError:
                raise self.err(f"integer literal of {len(node.children[0])} digits is too long", node) from None
        if node.data == "str_lit":
            return str(node.children[0])[1:-1]
        return node.data == "true_lit"

    # ---- expressions -------------------------------------------------------------
    def expr(self, node, local: dict | None = None) -> Any:
        if isinstance(node, lark.Token):
            raise self.err(f"unexpected {node!s}", node)
        kind = node.data
        if kind in ("int_lit", "str_lit", "true_lit", "false_lit"):
            return self.literal(node)
        if kind == "name":
            name = str(node.children[0])
            if local is not None and name in local:
                return local[name]
            if self.frame is not None and name in self.frame.args:
                return self.frame.args[name]
            if name == "length":
                return self.length(node)
            if name == "indices":
                self.positions_listed("indices", node)
            env = self.scope()
            if name not in env:
                if name in self.fns:
                    raise self.err(f"{name!r} is a function, not a value: call it, {name}(...)", node)
                args = self.frame.args if self.frame is not None else {}
                known = ", ".join(sorted([*env, *args])) or "nothing yet"
                close = suggest(name, [*env, *args, *(local or {}), "length", "true", "false"])
                m = node.meta
                raise self.err(f"unknown name {name!r}{close or comment_hint(self.text, m.line, m.column)} "
                               f"(defined so far: {known})", node)
            return env[name]
        if kind == "bin_op" or kind == "cmp_op":
            a, op, b = node.children
            return self.apply(str(op), [self.expr(a, local), self.expr(b, local)], node)
        if kind in ("and_op", "or_op"):
            a, b = (self.expr(c, local) for c in node.children)
            sels = [isinstance(x, (Select, SelAnd, SelOr, SelNot)) for x in (a, b)]
            if all(sels):
                m = node.meta
                return (SelAnd if kind == "and_op" else SelOr)(a, b, m.line, m.column)
            if any(sels):
                raise self.err("cannot combine a selector with a value", node)
            return self.apply("and" if kind == "and_op" else "or", [a, b], node)
        if kind == "not_op":
            a = self.expr(node.children[0], local)
            if isinstance(a, (Select, SelAnd, SelOr, SelNot)):
                return SelNot(a, node.meta.line, node.meta.column)
            return self.apply("not", [a], node)
        if kind == "neg_op":
            return self.apply("neg", [self.expr(node.children[0], local)], node)
        if kind == "if_op":
            c = self.expr(node.children[0], local)
            if isinstance(c, bool) and local is None:  # known when checked: only the branch taken is checked
                return self.expr(node.children[1 if c else 2], local)  # (a function's base case, k == 0)
            x, y = (self.expr(ch, local) for ch in node.children[1:])
            if isinstance(c, bool):  # in a lambda, on plain values: both branches are checked, as they always were
                return x if c else y
            if is_word(x) or is_word(y):
                return self.word_if(c, x, y, node)
            return self.apply("if", [c, x, y], node)
        if kind == "call":
            return self.call(node, local)
        if kind == "index":
            return self.index(node, local)
        if kind == "tuple_expr":
            return self.tuple_expr(node, local)
        if kind == "list_":
            return self.list_literal(node, local)
        if kind == "fold":
            return self.fold(node, local)
        if kind == "pred":
            raise self.err(f"the comparison {node.children[0]} alone is a predicate, which only select takes, as its "
                           "third argument: select(keys, queries, ==)", node)
        if kind == "lambda_":
            raise self.err(f"the lambda `{self.source(node)}` is only an argument of map, as its first: "
                           "map(x -> x + 1, tokens), or of select, as its third: select(k, q, (a, b) -> a < b)", node)
        raise self.err(f"unsupported construct {kind}", node)

    def positions_listed(self, what: str, node) -> None:
        """Refuse `what` (indices, a width, length), whose value set lists every position, past MAX_LEN_LIMIT."""
        if self.prog.max_len > MAX_LEN_LIMIT:
            raise self.err(f"a program that reads {what} has at most {MAX_LEN_LIMIT:,} positions (its value set "
                           f"lists them); this one's max_len is {self.prog.max_len:,} (line "
                           f"{self.max_len_node.meta.line}). Only latest/earliest's index goes further, to "
                           f"{LONG_MAX_LEN:,}", node)

    def length(self, node) -> SOp | int:
        if self.prog.exact_len:
            return self.prog.max_len
        self.positions_listed("length", node)
        if "indices" not in self.env:
            raise self.err("`length` is not known in the header; use a param", node)
        if self.prog.causal:
            raise self.err("`length` is unknown to a causal program; count the prefix with "
                           "width(select(indices, indices, <=))", node)
        if "length" not in self.env:
            idx = self.env["indices"]
            w = Width("length", tuple(range(1, self.prog.max_len + 1)), ONEHOT,
                      selector=Select(idx, idx, "true"))
            self.env["length"] = w
        return self.env["length"]

    def apply(self, op: str, args: list, node) -> Any:
        for a in args:
            if isinstance(a, ListValue):
                self.as_sop(a, node)  # refused: a list is the checker's, not an operand
            if isinstance(a, (Select, SelAnd, SelOr, SelNot)):
                shown_op = {"neg": "-", "if": "if"}.get(op, op)
                raise self.err(f"operator {shown_op!r} applies to values, not selectors (use & | !)", node)
        if any(is_word(a) for a in args):
            return self.word_arith(op, args, node)
        if op in ("+", "-", "*", "/", "neg"):
            affine = self.affine_of(op, args, node)
            if affine is not None:
                return affine
        if op == "not":
            fn = lambda a: not a
        elif op == "if":
            fn = lambda c, x, y: x if c else y
        elif op == "neg":
            fn = lambda a: -a
        else:
            base = BINOPS[op]
            fn = lambda a, b: base(_num(a), _num(b)) if op not in ("==", "!=", "and", "or") else base(a, b)
        fn = explained(op, fn)
        sops = [a for a in args if isinstance(a, SOp)]
        if not sops:
            try:
                return _lift(fn)(*args)
            except OpFailure as e:
                raise self.err(f"`{self.source(node)}` cannot be computed: {e}", node) from None
        if op in ("==", "!=") and len(sops) == 1:
            self.check_literal(op, args, node.children[::2] if len(node.children) == 3 else node.children, node)
        text = f"{op}({', '.join(a.label if isinstance(a, SOp) else repr(a) for a in args)})"
        bound, sops = over_sops(fn, args)
        return self.make_map(bound, sops, text, node)

    def check_literal(self, pred: str, args: list, arg_nodes: list, node, select: bool = False) -> None:
        """A value compared with a constant that it can never equal (a string vocabulary against 1, a token that is
        not in the vocabulary) gives the same answer at every position: refused, since it is almost surely a typo."""
        const_at = [i for i, a in enumerate(args) if not isinstance(a, SOp) or isinstance(a, Const)]
        seq_at = [i for i, a in enumerate(args) if isinstance(a, SOp) and not isinstance(a, Const)]
        if len(const_at) != 1 or len(seq_at) != 1 or pred in ("true", "false"):
            return
        c = args[const_at[0]].value if isinstance(args[const_at[0]], Const) else args[const_at[0]]
        seq = args[seq_at[0]]
        values = [v for v in seq.values if v is not None]
        if not values or seq.encoding == WORD:
            return
        holds = [pred_holds(pred, *((v, c) if seq_at[0] == 0 else (c, v))) for v in values]
        listed = any(sort_values([v, c]) == sort_values([v]) for v in values)
        name = self.source(arg_nodes[seq_at[0]])
        if any(holds) and not (pred == "!=" and all(holds) and not listed):
            return
        outcome = ("never selects a key" if not any(holds) else "selects every key") if select else \
            ("is always false" if not any(holds) else "is always true")
        src = self.source(node)
        if kind(c) not in kinds(values):
            why = f"{shown(c)} is {kind(c)}, but {name} holds {' and '.join(sorted(plural(k) for k in kinds(values)))}"
        elif not listed and pred in ("==", "!="):
            why = f"{shown(c)} is not a value of {name}"
        else:
            why = f"no value of {name} is {pred} {shown(c)}" if seq_at[0] == 0 else \
                f"{shown(c)} is {pred} no value of {name}"
        self.warn(self.err(f"`{src}` {outcome}: {why} ({shown_set(values)})", node))

    def warn(self, w: HardwireError) -> None:
        """A mistake that still compiles (a comparison that is constant): an error when strict, else a warning."""
        if self.strict:
            raise w
        lines = self.text.split("\n")
        w.source_line = lines[w.line - 1].rstrip("\r") if w.line is not None and w.line <= len(lines) else None
        if all(str(w) != str(x) for x in self.prog.warnings):  # a lambda's body is checked once per input value
            self.prog.warnings.append(w)

    def make_map(self, fn, inputs: list[SOp], text: str, node, encoding: str | None = None, lift: bool = True) -> Any:
        for s in inputs:
            if s.encoding == WORD:
                raise self.err(f"`{self.source(node)}` would need a table over every {s.bits}-bit word; words support "
                               "+ - * by a constant, comparisons and if", node)
        size = 1
        for s in inputs:
            size *= len(s.values)
        if size > VALUE_BUDGET:
            raise self.err(f"map over {size} input combinations exceeds the budget of {VALUE_BUDGET}", node)
        lifted = _lift(fn) if lift else fn
        out = []
        for combo in combos(inputs):  # an index at or past `length` never occurs
            try:
                out.append(lifted(*combo))
            except (ZeroDivisionError, TypeError, ValueError) as e:
                where = " and ".join(f"{self.input_name(s)} is {shown(v)}" for s, v in zip(inputs, combo))
                why = str(e) if isinstance(e, OpFailure) else op_failure(text, combo, e)
                raise self.err(f"`{self.source(node)}` fails where {where}: {why}", node) from None
        if any(isinstance(v, (SOp, Lin, Select, SelAnd, SelOr, SelNot)) for v in out):
            raise self.err(f"{text} gives a sequence, not a value: inside a lambda use only its parameters, "
                           "constants, params and tables (pass other sequences as more inputs)", node)
        if any(isinstance(v, Table) for v in out):
            raise self.err(f"{text} gives a table, not a value: index it, e.g. t[x]", node)
        values = sort_values(out)
        if encoding is None:
            numeric = all(isinstance(v, (int, Fraction)) and not isinstance(v, bool) for v in values if v is not None)
            encoding = SCALAR if numeric and any(s.encoding == SCALAR for s in inputs) else ONEHOT
        if encoding == SCALAR:
            values = sort_values(0 if v is None else _num(v) for v in values)
            bad = [v for v in values if not isinstance(v, (int, Fraction))]
            if bad:
                raise self.err(f"scalar encoding needs numbers, but `{self.source(node)}` can be {shown(bad[0])} "
                               f"({kind(bad[0])})", node)
        if len(inputs) == 1 and inputs[0].encoding == encoding and text == "identity" \
                and values == inputs[0].values:
            return inputs[0]
        m = node.meta
        return Map("_" + text, values, encoding, m.line, m.column, fn=lifted, inputs=tuple(inputs), text=text)

    def call(self, node, local) -> Any:
        fname = str(node.children[0])
        argn = [a for a in node.children[1:] if a is not None]
        if fname in self.fns:
            return self.expand(self.fns[fname], node, local)
        if fname in self.def_sites and fname not in functions():  # a `def` further down
            m = self.def_sites[fname].meta
            raise self.err(f"{fname!r} is defined below, at {m.line}:{m.column}: define a function above its first "
                           "call", node)
        if fname not in functions():  # before the arguments: a predicate or lambda there is only wrong for this name
            what = "a value, not a function" if self.visible(fname, local) else "not a function"
            names = (*functions(), *self.fns)
            raise self.err(f"{fname!r} is {what}{suggest(fname, names) or ''} (functions: {' '.join(names)})", node)
        if fname in COMPILE_TIME:
            return self.compile_time_call(fname, argn, node, local)
        if fname == "map":
            if not argn or getattr(argn[0], "data", None) != "lambda_":
                raise self.err("map takes a lambda then its inputs: map(x -> x + 1, tokens)", node)
            params_node, body = argn[0].children
            names = self.lambda_params(params_node)
            inputs = [self.expr(a, local) for a in argn[1:]]
            if len(names) != len(inputs):
                raise self.err(f"the lambda takes {len(names)} argument(s) but map gives it {len(inputs)}", node)

            consts = {n: v for n, v in zip(names, inputs) if not isinstance(v, SOp)}
            sop_names = [n for n, v in zip(names, inputs) if isinstance(v, SOp)]
            sops = [v for v in inputs if isinstance(v, SOp)]

            outer = dict(local or {})  # a nested lambda sees the parameters of the lambdas around it
            frame = self.frame  # and, in a function or a fold, its parameters, when the map's table is built later

            def bound(*vals, _c=consts, _n=tuple(sop_names)):
                saved_frame, self.frame = self.frame, frame
                try:
                    return self.expr(body, {**outer, **_c, **dict(zip(_n, vals))})
                finally:
                    self.frame = saved_frame
            text = f"map({', '.join(names)} -> {self.source(body)})"
            saved = self.lambda_inputs  # what each parameter is given, for messages about the lambda's body
            self.lambda_inputs = {**saved, **{n: self.source(a) for n, a in zip(names, argn[1:])}}
            try:
                return bound() if not sops else self.make_map(bound, sops, text, node)
            finally:
                self.lambda_inputs = saved
        if fname == "select" and len(argn) == 3 and isinstance(argn[2], lark.Tree) and argn[2].data == "name" \
                and not self.visible(str(argn[2].children[0]), local):
            raise self.err(f"select's third argument is a predicate, one of == != < <= > >= true false, not "
                           f"{argn[2].children[0]}", argn[2])
        if fname == "select" and len(argn) == 3 and getattr(argn[2], "data", None) == "lambda_":
            keys, queries = (self.expr(a, local) for a in argn[:2])
            if is_word(keys) or is_word(queries):
                raise self.err("a select on words compares them with == only", node)
            keys, queries = (self.select_side(self.as_sop(a, node), node) for a in (keys, queries))
            return self.custom_select(keys, queries, argn[2], local, node)
        # only select's third argument is a predicate (where `true` means "always"); elsewhere it is a value
        args = [self.pred_or_expr(a, local) if (fname == "select" and i == 2) else self.expr(a, local)
                for i, a in enumerate(argn)]
        if fname == "select":
            if len(args) != 3 or not isinstance(args[2], str) or not isinstance(argn[2], lark.Tree) \
                    or argn[2].data not in ("pred", "true_lit", "false_lit"):
                raise self.err("select takes (keys, queries, predicate); the predicate is one of "
                               "== != < <= > >= true false, or a lambda (k, q) -> ...", node)
            if is_word(args[0]) or is_word(args[1]):
                if args[2] != "==":
                    raise self.err("a select on words compares them with == only", node)
                keys, queries = (self.word_sop(a, node) if is_word(a) or isinstance(a, SOp) else None for a in args[:2])
                if keys is None or queries is None or isinstance(keys, Const) or isinstance(queries, Const):
                    raise self.err("a select on words needs a word on both sides, not a constant: test the word "
                                   "with == in a map and select on that boolean", node)
                return Select(keys, queries, "==")
            keys, queries = (self.select_side(self.as_sop(a, node), node) for a in args[:2])
            self.check_literal(args[2], [keys, queries], argn[:2], node, select=True)
            return Select(keys, queries, args[2], line=node.meta.line, column=node.meta.column)
        if fname in ("latest", "earliest"):
            which = "last" if fname == "latest" else "first"
            if len(args) != 2 or not isinstance(args[0], (Select, SelAnd, SelOr, SelNot)):
                raise self.err(f"{fname} takes a selector and a value: the value at the {which} selected position",
                               node)
            if not (isinstance(args[0], Select) and args[0].keys.encoding == WORD):   # wire_words.pick_columns
                self.refuse_word_select(args[0], fname, node)
            m = node.meta
            if is_word(args[1]):   # a word is copied bit by bit, as aggregate does; no selected key reads BOS: 0
                x = self.word_sop(args[1], node)
                if isinstance(x, Const):
                    raise self.err(f"{fname} of the constant word {x.value} is not compiled: a head has no "
                                   "dimensions to copy it from", node)
                vr = None if x.vrange is None else (min(x.vrange[0], 0), max(x.vrange[1], 0))
                return Aggregate(f"_{fname}", (), WORD, m.line, m.column, x.bits, vr, selector=args[0], value=x,
                                 pick=fname)
            x = self.as_sop(args[1], node)
            if x.encoding != ONEHOT:
                raise self.err(f"{fname} reads a one-hot value or a word", node)
            return Aggregate(f"_{fname}", sort_values((*x.values, None)), ONEHOT, m.line, m.column,
                             selector=args[0], value=x, pick=fname)
        if fname in ("aggregate", "width"):
            want = 2 if fname == "aggregate" else 1
            if len(args) != want or not isinstance(args[0], (Select, SelAnd, SelOr, SelNot)):
                raise self.err(f"{fname} takes a selector{' and a value' if want == 2 else ''}", node)
            if fname == "width":
                self.refuse_word_select(args[0], fname, node)
                self.positions_listed("width", node)
                return Width("_width", tuple(range(self.prog.max_len + 1)), ONEHOT, node.meta.line,
                             node.meta.column, selector=args[0])
            value = self.word_sop(args[1], node) if is_word(args[1]) else self.as_sop(args[1], node)
            return self.aggregate(args[0], value, node)
        if fname == "word":
            if len(args) != 1:
                raise self.err("word takes one value", node)
            if isinstance(args[0], int) and not isinstance(args[0], bool):
                return self.word_const(args[0], node)
            return self.word_sop(args[0], node)
        if fname == "default":
            if len(args) != 2:
                raise self.err(f"default takes a value and a fallback, not {len(args)} argument(s): default(x, 0) "
                               "is x, or 0 where x is none", node)
            param = str(argn[0].children[0]) if isinstance(argn[0], lark.Tree) and argn[0].data == "name" else ""
            if param in (local or {}) and not isinstance(args[0], SOp):
                given, fallback = self.lambda_inputs.get(param, "x"), self.source(argn[1])
                raise self.err(f"default({param}, {fallback}) inside a lambda does nothing: a map gives none wherever "
                               f"an input is none, so its lambda never sees none; apply default to the map's input, "
                               f"map({param} -> ..., default({given}, {fallback})), or to its result, "
                               f"default(map(...), {fallback})", node)
            if local is not None and not isinstance(args[0], (SOp, Select, SelAnd, SelOr, SelNot, Table)):
                return args[1] if args[0] is None else args[0]  # in a lambda: e.g. a table lookup that misses
            if not isinstance(args[0], SOp):
                raise self.err(f"default replaces none in a value that can be none (an aggregate, a table lookup), "
                               f"but {self.source(argn[0])} is a constant, which is never none", node)
            x, d = args
            if x.encoding != ONEHOT:
                return x
            if isinstance(d, SOp):
                return self.make_map(lambda v, w: w if v is None else v, [x, d], "default(...)", node, lift=False)
            return self.make_map(lambda v, d=d: d if v is None else v, [x], f"default(..., {d!r})", node,
                                 lift=False)
        if fname == "layernorm":
            return self.layernorm(args, node)
        if fname in ("scalar", "onehot"):
            if len(args) != 1:
                raise self.err(f"{fname} takes one value", node)
            x = args[0]
            if not isinstance(x, SOp):
                return x
            enc = SCALAR if fname == "scalar" else ONEHOT
            return self.make_map(lambda v: _num(v) if enc == SCALAR else v, [x], "identity", node, enc)
        if fname in ELEMENTWISE:  # compiler/check/primitives.py: a function of values, compiled as a map
            prim = ELEMENTWISE[fname]
            if not prim.takes(len(args)):
                raise self.err(f"{fname} takes {prim.arity}", node)
            fn = explained(fname, prim.fn)
            bound, sops = over_sops(fn, args)
            if not sops:  # constants, or a lambda's plain values: none propagates, as through a map
                try:
                    return _lift(fn)(*args)
                except OpFailure as e:
                    raise self.err(f"`{self.source(node)}` cannot be computed: {e}", node) from None
            return self.make_map(bound, sops, f"{fname}(...)", node)
        raise self.err(f"{fname!r} is not a function (functions: {' '.join((*functions(), *self.fns))})", node)

    def lambda_params(self, node) -> list[str]:
        """A lambda's parameters: `x` or `(a, b, ...)`, distinct names (parsed as an expression)."""
        parts = node.children if node.data == "tuple_expr" else [node]
        if not all(isinstance(p, lark.Tree) and p.data == "name" for p in parts):
            raise self.err("a lambda's parameters are names: x -> ... or (a, b) -> ...", node)
        names = [str(p.children[0]) for p in parts]
        if len(set(names)) != len(names):
            raise self.err("a lambda names a parameter twice", node)
        return names

    def tuple_expr(self, node, local) -> Any:
        """`(a, b, ...)`: a tuple value at every position (none if a component is none)."""
        args = [self.expr(c, local) for c in node.children]
        for a in args:
            if isinstance(a, ListValue) and not all(is_constant(x) for x in args):
                self.as_sop(a, node)  # refused: a list is the checker's, not a component of a value per position
            if isinstance(a, (Select, SelAnd, SelOr, SelNot, Table)):
                raise self.err("a tuple holds values, not selectors or tables", node)
        if any(is_word(a) for a in args):
            raise self.err("a tuple cannot hold a word; convert it with a map first", node)
        bound, sops = over_sops(lambda *vals: tuple(vals), args)
        if not sops:
            return _lift(bound)()
        return self.make_map(bound, sops, f"({', '.join(a.label if isinstance(a, SOp) else repr(a) for a in args)})",
                             node)

    def source(self, node) -> str:
        m = node.meta
        return self.text[m.start_pos:m.end_pos] if not m.empty else "?"

    def pred_or_expr(self, node, local):
        if isinstance(node, lark.Tree) and node.data == "pred":
            return str(node.children[0])
        if isinstance(node, lark.Tree) and node.data in ("true_lit", "false_lit"):
            return "true" if node.data == "true_lit" else "false"
        return self.expr(node, local)

    def as_sop(self, v, node) -> SOp:
        if isinstance(v, SOp):
            return v
        if isinstance(v, Table):
            raise self.err("a table is not a value at every position; index it, e.g. t[tokens]", node)
        if isinstance(v, (Select, SelAnd, SelOr, SelNot)):
            raise self.err("expected a value here, got a selector", node)
        if isinstance(v, ListValue):
            raise self.err(f"the list {shown(v)} is known only to the checker, not a value at every position: index "
                           "it, take its len or fold over it, any(... for x in list)", node)
        return Const(repr(v), (v,), ONEHOT, value=v)

    def aggregate(self, sel, x: SOp, node) -> Aggregate:
        m = node.meta
        if x.encoding == WORD:
            if isinstance(x, Const):  # a constant has no dimensions for a head to copy
                raise self.err(f"aggregate of the constant word {x.value} is not compiled: a head has no "
                               "dimensions to copy it from", node)
            if not self.selects_at_most_one(sel):
                raise self.err("aggregate of a word must select at most one position: use `==` on a key that "
                               "differs at every position (e.g. indices)", node)
            vr = None if x.vrange is None else (min(x.vrange[0], 0), max(x.vrange[1], 0))  # 0 when none selected
            return Aggregate("_aggregate", (), WORD, m.line, m.column, x.bits, vr, selector=sel, value=x)
        if x.encoding == SCALAR:
            exact = self.prog.exact_len and self.selects_every_key(sel)
            values = self.exact_means(x.values, self.prog.max_len, node) if exact else self.means(x.values, node)
            return Aggregate("_aggregate", values, SCALAR, m.line, m.column, selector=sel, value=x)
        if not self.selects_at_most_one(sel):
            raise self.err("aggregate of a one-hot value must select at most one position, and this "
                           "selector is not provably so: use `==` on a key that differs at every position "
                           "(indices, tokens of a `distinct` program, an injective map of those, or a rank), "
                           "or take a mean with scalar(...)", node)
        return Aggregate("_aggregate", sort_values((*x.values, None)), ONEHOT, m.line, m.column,
                         selector=sel, value=x)

    def means(self, values: tuple, node) -> tuple:
        vals = sorted({Fraction(_num(v)) for v in values})
        sums, out = {Fraction(0)}, {Fraction(0)}
        for k in range(1, self.prog.max_len + 1):
            sums = {s + v for s in sums for v in vals}
            out |= {s / k for s in sums}
            if len(out) > VALUE_BUDGET:
                raise self.err(f"a mean of {len(vals)} values over {self.prog.max_len} positions has more "
                               f"than {VALUE_BUDGET} possible values; lower max_len or the value set", node)
        return sort_values(int(v) if v.denominator == 1 else v for v in out)

    # ---- uniqueness proofs for one-hot aggregates --------------------------------------
    def selects_at_most_one(self, sel) -> bool:
        if isinstance(sel, Select):
            return self.injective(sel.keys) and (sel.pred == "==" or self.picks_one_key_per_query(sel))
        if isinstance(sel, SelAnd):
            return self.selects_at_most_one(sel.left) or self.selects_at_most_one(sel.right)
        return False

    def refuse_word_select(self, sel, fname: str, node) -> None:
        """A select on words is wired alone (one head matching every bit): width, or latest/earliest over a word
        select combined with other selects, are not compiled."""
        if any(a.keys.encoding == WORD or a.queries.encoding == WORD for a in selector_atoms(sel)):
            what = "a select on words combined with other selects" if fname in ("latest", "earliest") \
                else "a select on words"
            raise self.err(f"{fname} over {what} is not compiled yet; select on one-hot values "
                           "(e.g. indices) instead", node)

    def injective(self, s: SOp) -> bool:
        if isinstance(s, Indices):
            return True
        if isinstance(s, Tokens):
            return self.prog.distinct
        if isinstance(s, Map):
            if any(i.encoding == WORD for i in s.inputs) or not any(self.injective(i) for i in s.inputs):
                return False
            seen = combos(s.inputs)
            return len({s.fn(*c) for c in seen}) == len(seen)
        if isinstance(s, Width) and isinstance(s.selector, Select) and not self.prog.causal:
            sel = s.selector
            kinds = {"num" if isinstance(v, (int, Fraction)) else type(v).__name__ for v in sel.keys.values}
            comparable = len(kinds) == 1 and kinds <= {"num", "str"}  # none, tuples or mixed types may tie
            return sel.keys is sel.queries and sel.pred in ("<", ">") and comparable and self.injective(sel.keys)
        return False


def check_source(text: str, file: str = "<input>", params: dict[str, int] | None = None,
                 strict: bool = False) -> Program:
    """Parse and check a program; raises HardwireError with file:line:column (and the source line) on bad input.
    Mistakes that still compile are in the program's warnings, or raised too when strict."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as some editors write: not part of the program
    try:
        prog = Elaborator(text, file, params, strict).run(parse(text, file))
    except HardwireError as e:
        if e.file == file and e.line is not None and e.source_line is None:
            lines = text.split("\n")
            e.source_line = lines[e.line - 1].rstrip("\r") if e.line <= len(lines) else None
        raise
    prog.source = text  # compiled into the weight file's header, so a certificate names the program
    return prog


def check_file(path: str, params: dict[str, int] | None = None, strict: bool = False) -> Program:
    """Read (with the CLI's reader and messages: "cannot read file", "not UTF-8 text" at line:column) and check."""
    from hardwire.compiler.check.source import read_text
    return check_source(read_text(path), path, params, strict)
