"""The compiled program's values, selectors and lookup tables written back in the language's syntax.

`hardwire explain` labels every block with what it computes. The checked program keeps no syntax tree,
so this rebuilds readable text from the SOps themselves: names where the program named a value, and
an infix rendering of a map's `text` (such as `-(_-(length, indices), 1)`) where it did not.
"""
from __future__ import annotations

import itertools
import re
from fractions import Fraction

from hardwire.compiler.core.sops import (
    WORD,
    Affine,
    Aggregate,
    Const,
    Lin,
    Map,
    Mux,
    Norm,
    Program,
    Register,
    SelAnd,
    Select,
    SelNot,
    SelOr,
    SOp,
    Width,
    WordMux,
    WordTest,
)

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
BINARY = {"or": 1, "and": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
          "+": 4, "-": 4, "*": 5, "/": 5, "//": 5, "%": 5}
ATOM = 9  # precedence of a name, a literal or a call: never needs parentheses
TABLE_ROWS = 50  # the most rows a lookup table shows
WRITTEN = "explain_text"  # the attribute remember_text() stores a map's definition in


def show(v) -> str:
    """A value as the page prints it: none, 5/3, True, a, 0.3333."""
    if v is None:
        return "none"
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def literal(v) -> str:
    """A constant as the language writes it: strings in double quotes."""
    return f'"{v}"' if isinstance(v, str) else show(v)


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments (parentheses and quotes nest)."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


def wrap_if(text: str, prec: int, need: int) -> str:
    return f"({text})" if prec < need else text


def infix(text: str, names: dict[str, tuple[str, int]] | None = None) -> tuple[str, int]:
    """A map's prefix `text` (`-(_-(length, indices), 1)`) as infix (`length - indices - 1`), with its precedence.

    names: how to write the map's inputs, by label (an unnamed input's label is not its definition).
    """
    names = names or {}
    if text in names:
        return names[text]
    if text.startswith("'") and text.endswith("'"):
        return literal(text[1:-1]), ATOM
    if "(" not in text or not text.endswith(")"):
        return text, ATOM
    op, inner = text[:text.index("(")], text[text.index("(") + 1:-1]
    if op in ("map", "default", "min", "max", "abs") or not op:
        return text, ATOM
    args = [infix(a, names) if a in names else infix(a[1:], names) if a.startswith("_") else infix(a, names)
            for a in split_args(inner)]
    if op in BINARY and len(args) == 2:
        p = BINARY[op]
        (a, pa), (b, pb) = args
        return f"{wrap_if(a, pa, p)} {op} {wrap_if(b, pb, p + 1)}", p
    if op in ("not", "neg") and len(args) == 1:
        a, pa = args[0]
        return (f"not {wrap_if(a, pa, 3)}", 2) if op == "not" else (f"-{wrap_if(a, pa, ATOM)}", 6)
    if op == "if" and len(args) == 3:
        return f"if {args[0][0]} then {args[1][0]} else {args[2][0]}", 0
    return f"{op}({', '.join(a for a, _ in args)})", ATOM


def lin(x: Lin) -> tuple[str, int]:
    """A word's linear form, `vb - va` or `pc + 3`, with its precedence."""
    parts = []
    for k, (c, s) in enumerate(x.terms):
        need = 5 if abs(c) != 1 or c < 0 else 0 if k == 0 else 4
        name = ref(s, need)
        parts.append(("- " if c < 0 else "+ ") + (name if abs(c) == 1 else f"{abs(c)} * {name}"))
    if x.const or not parts:
        parts.append(("- " if x.const < 0 else "+ ") + str(abs(x.const)))
    if len(parts) == 1 and parts[0].startswith("+ "):
        return parts[0][2:], ATOM if x.terms and abs(x.terms[0][0]) == 1 else 5
    text = " ".join(parts)
    return (text[2:] if text.startswith("+ ") else "-" + text[2:]), 4


def ref(s: SOp, need: int = 0) -> str:
    """How another expression refers to `s`: its name if the program named it, else its definition."""
    if isinstance(s, Const):
        return literal(s.value)
    if isinstance(s, Register) or NAME.match(s.label) and not s.label.startswith("_"):
        return s.label
    text, prec = definition(s)
    return wrap_if(text, prec, need)


def definition(s: SOp) -> tuple[str, int]:
    """What `s` computes, in the language's syntax, whatever it is called; with its precedence."""
    if isinstance(s, Const):
        return literal(s.value), ATOM
    if isinstance(s, Affine):
        text = lin(Lin(tuple(s.terms), 0))[0] if s.terms else ""
        if s.const:
            text = f"{text} {'-' if s.const < 0 else '+'} {show(abs(s.const))}" if text else show(s.const)
        return text, 4
    if isinstance(s, WordTest):
        return f"{wrap_if(*lin(s.lin), 4)} {s.op} {s.const}", 3
    if isinstance(s, WordMux) and s.target is None and len(s.cases) == 1 and s.cases[0][0] is None:
        return lin(s.cases[0][1])
    if isinstance(s, Norm):
        return f"layernorm({ref(s.x)}, {show(s.eps)})", ATOM
    if isinstance(s, Aggregate):
        fn = {"latest": "latest", "earliest": "earliest"}.get(s.pick, "aggregate")
        return f"{fn}({selector(s.selector)}, {ref(s.value)})", ATOM
    if isinstance(s, Width):
        return f"width({selector(s.selector)})", ATOM
    if isinstance(s, Map) and not isinstance(s, Mux):
        if WRITTEN in s.__dict__:
            return s.__dict__[WRITTEN]
        if s.text == "identity" and len(s.inputs) == 1:
            return f"{'scalar' if s.encoding == 'scalar' else 'onehot'}({ref(s.inputs[0])})", ATOM
        if s.text.startswith("map("):
            return f"{s.text[:-1]}, {', '.join(ref(i) for i in s.inputs)})", ATOM
        if s.text == "first true case":
            return f"first true case of ({', '.join(ref(i) for i in s.inputs)})", ATOM
        names = {i.label: (ref(i), ATOM) if ref(i) == i.label else definition(i) for i in s.inputs}
        return infix(s.text, names)
    return s.label.lstrip("_"), ATOM


def remember_text(prog: Program) -> None:
    """Store every map's definition on it before map fusion (compiler/fuse.py) composes maps into one whose
    `text` no longer matches its inputs; a deep copy, as fusion makes, keeps the attribute."""
    from hardwire.compiler.lower import walk
    for s in walk(prog.roots()):
        if isinstance(s, Map) and not isinstance(s, Mux):
            setattr(s, WRITTEN, definition(s))


def selector(sel, need: int = 0) -> str:
    """A selector as written: `select(indices, opp, ==)`, combined with `&`, `|` and `!`."""
    if isinstance(sel, Select) and sel.origin is not None:  # one select standing for a combination (combine.py)
        return selector(sel.origin, need)
    if isinstance(sel, Select):
        return f"select({ref(sel.keys)}, {ref(sel.queries)}, {sel.pred})"
    if isinstance(sel, SelNot):
        return "!" + selector(sel.inner, 3)
    op, prec = ("&", 2) if isinstance(sel, SelAnd) else ("|", 1)
    assert isinstance(sel, (SelAnd, SelOr))
    return wrap_if(f"{selector(sel.left, prec)} {op} {selector(sel.right, prec + 1)}", prec, need)


def source_line(source: list[str], s: SOp) -> str:
    """The program line `s` comes from (stripped of comments), or ''."""
    if not 0 < s.line <= len(source):
        return ""
    return source[s.line - 1].split("#", 1)[0].strip()


def commit(prog: Program, s: Mux, source: list[str]) -> str:
    """A loop commit (a mux that rewrites a register at the end of the pass) as an update line."""
    loop, name = prog.loop, s.target.label
    flags = {r.label: k for k, r in loop.flags.items()} if loop else {}
    kind = flags.get(name)
    if kind == "halted" and loop.halt is not None:
        return f"{name} := {ref(loop.halt)}   (the halt test; the runtime stops when it is true)"
    if kind == "emit_on" and loop.emit is not None:
        when = loop.emit[1]
        return f"{name} := {ref(when) if when is not None else 'true'}   (does this pass emit?)"
    if kind == "emit_val" and loop.emit is not None:
        return f"{name} := {ref(loop.emit[0])}   (the value emitted)"
    line = source_line(source, s)
    return line if ":=" in line else f"{name} := ..."


def formula(prog: Program, s: SOp, kind: str, source: list[str]) -> str:
    """One line saying what a block computes: `parity = ones % 2`, `ones = width(select(tokens, 1, ==))`."""
    if kind == "embed":
        if isinstance(s, Register):
            return f"{s.label}: a register (its value at the start of the pass)"
        text, _ = definition(s)
        return s.label if text == s.label.lstrip("_") else f"{s.label} = {text}"
    if kind == "mlp" and isinstance(s, Width):
        return f"{s.label} = 1/{s.label}.frac - 1   (the head wrote 1/({s.label}+1))"
    if isinstance(s, Mux) and s.target is not None:
        return commit(prog, s, source)
    if isinstance(s, Mux) and not isinstance(s, WordMux):
        return source_line(source, s) or s.label
    text, _ = definition(s)
    return f"{s.label} = {text}"


def table_inputs(s: SOp) -> list[tuple[str, tuple]] | None:
    """The (name, value set) of each input an MLP looks up, or None when the inputs are words (not listed)."""
    if isinstance(s, Width):
        return [(f"{s.label}.frac", tuple(Fraction(1, w + 1) for w in s.values))]
    if isinstance(s, Norm):
        return [(ref(s.x), s.x.values)]
    if isinstance(s, Map) and not isinstance(s, (Mux, WordTest)):
        if any(i.encoding == WORD for i in s.inputs):
            return None
        return [(ref(i), i.values) for i in s.inputs]
    return None


def lookup_rows(s: SOp, hits: set[tuple] = frozenset()) -> tuple[list[tuple[tuple, object]], int]:
    """The lookup table of an MLP: (input combination, output) rows, at most TABLE_ROWS, with every combination
    in `hits` (the ones this input used) kept; and how many rows were left out."""
    ins = table_inputs(s)
    assert ins is not None

    def out(combo: tuple):
        if isinstance(s, Width):
            return int(1 / combo[0]) - 1
        if isinstance(s, Norm):
            return combo[0] > 0
        return s.fn(*combo)
    total, rows = 1, []
    for _, vals in ins:
        total *= len(vals)
    for combo in itertools.islice(itertools.product(*(v for _, v in ins)), TABLE_ROWS):
        rows.append((combo, out(combo)))
    shown = {c for c, _ in rows}
    extra = [c for c in hits - shown if len(c) == len(ins) and all(x in v for x, (_, v) in zip(c, ins))]
    rows += [(c, out(c)) for c in sorted(extra, key=str)]
    return rows, total - len(rows)
