"""The reference interpreter: the meaning of a program, with no knowledge of weights."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from .errors import HardwireError
from .sops import SCALAR, Aggregate, Const, Indices, Map, Program, SOp, Tokens, Width, selector_atoms, selector_holds


def validate_input(prog: Program, tokens: list) -> None:
    """Reject inputs outside the program's declared bounds."""
    if not tokens:
        raise HardwireError("the input is empty; give at least one token")
    if len(tokens) > prog.max_len:
        raise HardwireError(f"input has {len(tokens)} tokens but max_len is {prog.max_len}")
    for i, t in enumerate(tokens):
        if t not in prog.vocab:
            raise HardwireError(f"token {t!r} at position {i} is not in the vocabulary {list(prog.vocab)}")
    if prog.distinct and len(set(tokens)) != len(tokens):
        raise HardwireError("this program is declared `distinct`, but the input repeats a token")


def selection(prog: Program, sel, memo: dict, n: int) -> list[list[bool]]:
    """sel[q][k]: does query position q select key position k?"""
    atoms = selector_atoms(sel)
    keys = {id(a.keys): value(prog, a.keys, memo, n) for a in atoms}
    queries = {id(a.queries): value(prog, a.queries, memo, n) for a in atoms}
    return [[(not prog.causal or k <= q)
             and selector_holds(sel, {i: v[k] for i, v in keys.items()}, {i: v[q] for i, v in queries.items()})
             for k in range(n)] for q in range(n)]


def value(prog: Program, s: SOp, memo: dict, n: int) -> list:
    if id(s) in memo:
        return memo[id(s)]
    if isinstance(s, Tokens):
        out = list(memo["tokens"])
    elif isinstance(s, Indices):
        out = list(range(n))
    elif isinstance(s, Const):
        out = [s.value] * n
    elif isinstance(s, Map):
        cols = [value(prog, i, memo, n) for i in s.inputs]
        out = [s.fn(*vals) for vals in zip(*cols)]
        if s.encoding == SCALAR:
            out = [0 if v is None else v for v in out]
    elif isinstance(s, Width):
        out = [sum(row) for row in selection(prog, s.selector, memo, n)]
    elif isinstance(s, Aggregate):
        x = value(prog, s.value, memo, n)
        out = []
        for q, row in enumerate(selection(prog, s.selector, memo, n)):
            chosen = [x[k] for k in range(n) if row[k]]
            if s.encoding == SCALAR:
                mean = sum((Fraction(v) for v in chosen), Fraction(0)) / len(chosen) if chosen else Fraction(0)
                out.append(int(mean) if mean.denominator == 1 else mean)
            elif not chosen:
                out.append(None)
            elif len(set(chosen)) == 1:
                out.append(chosen[0])
            else:
                raise HardwireError(f"aggregate {s.label!r} selects several different values at position {q}")
    else:
        raise TypeError(f"unknown SOp {type(s).__name__}")
    for i, v in enumerate(out):
        if v not in s.values:
            raise AssertionError(f"{s.label} = {v!r} at {i} is outside its inferred value set")
    memo[id(s)] = out
    return out


def run(prog: Program, tokens: list) -> dict[str, list]:
    """Every output of `prog` on `tokens`, one value per position."""
    validate_input(prog, tokens)
    memo: dict[Any, Any] = {"tokens": list(tokens)}
    return {name: value(prog, s, memo, len(tokens)) for name, s in prog.outputs.items()}
