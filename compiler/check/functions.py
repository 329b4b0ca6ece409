"""Functions, folds, compile-time lists and ranges: the checker's macros, expanded before anything is compiled.

`def f(x, k) = body` is expanded at each call with the arguments' values bound to its parameters (each argument is
evaluated once, and a call repeated with the same arguments is the same value, so nothing is computed twice);
`any/all/sum(e for x in list)` unrolls into `or`/`and`/`+`; `{1..n}` in a set is its integers. None of it reaches
the IR: a program with functions compiles to the same blocks as the program written out by hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import lark
from hardwire.compiler.check.messages import functions, shown, suggest
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import VALUE_BUDGET
from hardwire.compiler.core.sops import SelAnd, Select, SelNot, SelOr, SOp, Table

SELECTORS = (Select, SelAnd, SelOr, SelNot)
FOLDS = {"any": "or", "all": "and", "sum": "+"}
EMPTY = {"any": False, "all": True, "sum": 0}


class ListValue(tuple):
    """A compile-time list `[a, b, ...]` of constants: folded over, indexed, measured; never a value per position."""
    brackets = "[]"


@dataclass
class Function:
    """A `def`: its parameters, its body (a parse tree) and the names it sees (those defined above it)."""
    name: str
    params: list[str]
    body: Any
    env: dict[str, Any]
    node: Any


@dataclass
class Frame:
    """Where a function body or a fold's element is being checked: the names bound there, the definitions it sees
    and the functions being expanded around it."""
    args: dict[str, Any]
    env: dict[str, Any]
    active: frozenset = field(default_factory=frozenset)


def is_constant(v: Any) -> bool:
    """A value the checker knows outright (a literal, a param, a tuple or list of them), not a value per position."""
    if isinstance(v, tuple):
        return all(is_constant(x) for x in v)
    return v is None or isinstance(v, (bool, int, str, Fraction))


def memo_key(v: Any) -> tuple:
    """The key a call's argument is remembered by: constants by what they are (1 and true differ), others by id."""
    if is_constant(v):
        return ("c", type(v).__name__, repr(v))
    return ("o", id(v))


def calls_in(tree) -> list:
    """Every call and fold inside a parse tree (a def's body), in source order."""
    if not isinstance(tree, lark.Tree):
        return []
    return [t for t in tree.iter_subtrees_topdown() if t.data in ("call", "fold")]


class FunctionOps:
    """The Elaborator's rules for def, calls of defined functions, folds, lists and set ranges (a mixin)."""

    fns: dict[str, Function]
    fixed_params: dict[str, Any]
    frame: Frame | None
    memo: dict[tuple, tuple]

    def visible(self, name: str, local: dict | None) -> bool:
        """Whether a name means a value here: a lambda's or function's parameter, a fold variable or a definition."""
        return name in (local or {}) or (self.frame is not None and name in self.frame.args) or name in self.scope()

    def scope(self) -> dict[str, Any]:
        """The definitions a name resolves to here: those above the function being expanded, else the program's."""
        return self.frame.env if self.frame is not None else self.env

    def input_name(self, s: SOp) -> str:
        """A map's input in a message: its name, else the function parameter it was passed as, else 'an input'."""
        if not s.label.startswith("_"):
            return s.label
        given = [n for n, v in (self.frame.args.items() if self.frame is not None else ()) if v is s]
        return given[0] if given else "an input"

    def not_a_function(self, name: str, tok) -> None:
        """A value, table or register may not take a defined function's name (a call and a name would differ)."""
        if name in self.fns:
            m = self.fns[name].node.meta
            raise self.err(f"{name!r} is a function (defined at {m.line}:{m.column}); a value needs a name of its own",
                           tok)

    def list_param(self, node) -> None:
        """`param pairs = [...]` or `param pattern = "abc"`: a constant fixed in the source. --param sets integer
        params only, since a weight file records its params as integers and its certificate re-checks from them."""
        name_tok, val = node.children
        name = str(name_tok)
        if name in self.env:
            raise self.err(f"param {name!r} is declared twice", name_tok)
        if name in self.overrides:
            raise HardwireError(f"--param {name}: {name} is a {'string' if isinstance(val, lark.Token) else 'list'} "
                                "param, fixed in the program's source; --param sets integer params only",
                                self.file, name_tok.line, name_tok.column)
        self.env[name] = str(val)[1:-1] if isinstance(val, lark.Token) else self.list_literal(val, None)
        self.fixed_params[name] = self.env[name]

    def define(self, node) -> None:
        """`def name(p, ...) = body`: checked for clashes and for calls it cannot make (itself, or functions below)."""
        name_tok, *rest = node.children
        name, body = str(name_tok), rest[-1]
        params = [p for p in rest[:-1] if p is not None]
        if name in functions():
            raise self.err(f"{name!r} is a built-in function; a function needs a name of its own", name_tok)
        if name in self.env or name in ("tokens", "indices", "length"):
            raise self.err(f"{name!r} is already a value; a function needs a name of its own", name_tok)
        if name in self.fns:
            first = self.fns[name].node.meta
            raise self.err(f"function {name!r} is defined twice (first at {first.line}:{first.column})", name_tok)
        seen: set[str] = set()
        for p in params:
            if str(p) in seen:
                raise self.err(f"function {name!r} names the parameter {str(p)!r} twice", p)
            seen.add(str(p))
        for c in calls_in(body):
            callee, tok = str(c.children[0]), c.children[0]
            if callee == name:
                raise self.err(f"{name!r} calls itself: a function is expanded where it is called, so it cannot be "
                               "recursive; unroll it over a list with any/all/sum(... for x in list)", tok)
            if callee not in functions() and callee not in self.fns:
                hint = suggest(callee, [*functions(), *self.fns])
                raise self.err(f"{name!r} calls {callee!r}, which is not a function defined above it{hint} (a "
                               "function calls built-ins and functions defined before it, so none is recursive)", tok)
        self.fns[name] = Function(name, [str(p) for p in params], body, dict(self.env), node)

    def expand(self, fn: Function, node, local) -> Any:
        """A call of a defined function: its arguments evaluated here, then its body with them bound (once per distinct
        arguments). An error inside the body names its own place and, after it, the calls it was reached from."""
        argn = [a for a in node.children[1:] if a is not None]
        for a in argn:
            if isinstance(a, lark.Tree) and a.data in ("pred", "lambda_"):
                raise self.err(f"{fn.name}'s arguments are values, selectors or constants, not "
                               f"{'a predicate' if a.data == 'pred' else 'a lambda'}", a)
        if len(argn) != len(fn.params):
            want = f"{len(fn.params)} argument{'s' if len(fn.params) != 1 else ''}"
            raise self.err(f"{fn.name} takes {want} ({', '.join(fn.params)}), given {len(argn)}", node)
        args = [self.expr(a, local) for a in argn]
        key = (fn.name, local is not None, *(memo_key(a) for a in args))
        if key in self.memo:
            return self.memo[key][0]
        outer = self.frame
        active = outer.active if outer is not None else frozenset()
        if fn.name in active:  # define() refuses this; kept so that no expansion can loop
            raise self.err(f"{fn.name!r} is reached again while it is expanded: functions cannot be recursive", node)
        self.frame = Frame(dict(zip(fn.params, args)), fn.env, active | {fn.name})
        try:
            result = self.expr(fn.body, {} if local is not None else None)
        except HardwireError as e:
            raise self.called_from(e, fn.name, node) from None
        finally:
            self.frame = outer
        self.memo[key] = (result, args)  # the arguments are kept so that their ids stay theirs
        return result

    def called_from(self, e: HardwireError, name: str, node) -> HardwireError:
        """The error with the call it came from added: '... (in frac_prevs(...) called at 9:14, from ... at 12:3)'."""
        m = node.meta
        where = f"{name}(...) called at {m.line}:{m.column}"
        if getattr(e, "calls", None):
            e.message = e.message[:-1] + f", from {where})"
        else:
            e.message = f"{e.message} (in {where})"
        e.calls = True
        e.args = (str(e),)
        return e

    def fold(self, node, local) -> Any:
        """`any/all/sum(e for x in list)`: e checked once per element, joined with or / and / +."""
        fname_tok, elem, *targets, seq_node = node.children
        fname = str(fname_tok)
        if fname not in FOLDS:
            raise self.err(f"only any, all and sum fold over a list, e.g. any(x < 0 for x in list); {fname} does "
                           "not", fname_tok)
        names = [str(t) for t in targets]
        if len(set(names)) != len(names):
            raise self.err("a fold names a variable twice", node)
        seq = self.expr(seq_node, local)
        items = self.compile_time_list(seq, seq_node, "a fold runs over")
        outer = self.frame
        out: Any = None
        for item in items:
            if len(names) == 1:
                bound = {names[0]: item}
            elif isinstance(item, tuple) and len(item) == len(names):
                bound = dict(zip(names, item))
            else:
                raise self.err(f"`for {', '.join(names)} in ...` unpacks {len(names)} components, but an element is "
                               f"{shown(item)}", node)
            if local is not None:
                v = self.expr(elem, {**local, **bound})
            else:
                frame = outer or Frame({}, self.env)
                self.frame = Frame({**frame.args, **bound}, frame.env, frame.active)
                try:
                    v = self.expr(elem, None)
                finally:
                    self.frame = outer
            out = v if out is None else self.join(FOLDS[fname], out, v, node)
        return EMPTY[fname] if out is None else out

    def join(self, op: str, a: Any, b: Any, node) -> Any:
        """a or/and/+ b, as the operators compute it (selectors combine into selectors)."""
        sels = [isinstance(x, SELECTORS) for x in (a, b)]
        if op in ("or", "and") and all(sels):
            return SelOr(a, b) if op == "or" else SelAnd(a, b)
        if any(sels):
            raise self.err("a fold cannot combine a selector with a value", node)
        return self.apply(op, [a, b], node)

    def compile_time_list(self, v: Any, node, what: str) -> tuple:
        """A list, tuple or string known to the checker, as a tuple of its elements (else an error naming `what`)."""
        if isinstance(v, str):
            return tuple(v)
        if isinstance(v, tuple) and is_constant(v):
            return tuple(v)
        raise self.err(f"{what} a compile-time list (a list literal [...], a list param, a string or enumerate(...)),"
                       f" not {'a value at every position' if isinstance(v, SOp) else 'this'}", node)

    def compile_time_call(self, fname: str, argn: list, node, local) -> Any:
        """len(list) and enumerate(list); any/all/sum without a `for` are refused with the form they take."""
        if fname in FOLDS:
            raise self.err(f"{fname} folds over a list: {fname}(e for x in list), e.g. {fname}(x == c for c in \"ab\")",
                           node)
        if len(argn) != 1:
            raise self.err(f"{fname} takes one list", node)
        items = self.compile_time_list(self.expr(argn[0], local), argn[0], f"{fname} takes")
        if fname == "len":
            return len(items)
        return ListValue(tuple(enumerate(items)))

    def list_literal(self, node, local) -> ListValue:
        """`[a, b, ...]`: constants only (a list is unrolled by the checker, not held at each position)."""
        items = [self.expr(c, local) for c in node.children if c is not None]
        for c, v in zip((c for c in node.children if c is not None), items):
            if not is_constant(v):
                what = "a selector" if isinstance(v, SELECTORS) else "a table" if isinstance(v, Table) else \
                    "a value at every position"
                raise self.err(f"a list holds constants (numbers, strings, booleans, tuples, lists), not {what}", c)
        return ListValue(tuple(items))

    def set_items(self, nodes) -> list:
        """The entries of a `{...}` set (vocab, state, stop): literals and inclusive ranges `a..b` of integers."""
        out: list = []
        for c in nodes:
            if c is None:
                continue
            if not (isinstance(c, lark.Tree) and c.data == "range_"):
                out.append(self.vlit(c))
                continue
            lo_node, _, hi_node = c.children
            lo, hi = self.expr(lo_node), self.expr(hi_node)
            for b, n in ((lo, lo_node), (hi, hi_node)):
                if not isinstance(b, int) or isinstance(b, bool):
                    raise self.err(f"a range's ends are integers (literals or params), not {shown(b)}", n)
            if hi < lo:
                raise self.err(f"the range {lo}..{hi} is empty: a range goes up and includes both ends "
                               f"({hi}..{lo} is {hi} to {lo})", c)
            if hi - lo + 1 > VALUE_BUDGET:
                raise self.err(f"the range {lo}..{hi} has {hi - lo + 1:,} values, over the value budget of "
                               f"{VALUE_BUDGET:,}", c)
            out.extend(range(lo, hi + 1))
        return out
