"""The reference interpreter: the meaning of a program, with no knowledge of weights."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.sops import (
    SCALAR,
    WORD,
    Affine,
    Aggregate,
    Const,
    Indices,
    Map,
    Norm,
    Program,
    Register,
    SOp,
    Tokens,
    Width,
    selector_atoms,
    selector_holds,
    value_key,
    wrap,
)


def token_key(t) -> tuple | None:
    """A token's identity by type and value (1 is not true); None for something unhashable, never a token."""
    try:
        k = value_key(t)
        hash(k)
    except TypeError:
        return None
    return k


def validate_input(prog: Program, tokens: list) -> None:
    """Reject inputs outside the program's declared bounds."""
    if not tokens:
        raise HardwireError("the input is empty; give at least one token")
    if len(tokens) > prog.max_len:
        raise HardwireError(f"input has {len(tokens)} tokens but max_len is {prog.max_len}")
    if prog.exact_len and len(tokens) != prog.max_len:
        raise HardwireError(f"input has {len(tokens)} tokens, but this program is `exact_len`: every input has "
                            f"exactly {prog.max_len}")
    vocab = {value_key(v) for v in prog.vocab}
    for i, t in enumerate(tokens):
        if prog.word_vocab:
            n = prog.word_bits
            if isinstance(t, bool) or not isinstance(t, int) or wrap(t, n) != t:
                raise HardwireError(f"token {t!r} at position {i} is not a {n}-bit word "
                                    f"[{-(1 << (n - 1))}, {(1 << (n - 1)) - 1}]")
        elif token_key(t) not in vocab:
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
    elif isinstance(s, Register):
        out = memo["regs"][id(s)]
    elif isinstance(s, Affine):
        out = [sum((c * Fraction(v) for c, v in zip((c for c, _ in s.terms), vals)), s.const)
               for vals in zip(*(value(prog, x, memo, n) for _, x in s.terms))]
        out = [int(v) if v.denominator == 1 else v for v in out]
    elif isinstance(s, Norm):
        out = [v > 0 for v in value(prog, s.x, memo, n)]
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
            if s.pick:
                none = 0 if s.encoding == WORD else None   # a word with no selected key reads BOS: 0
                out.append((chosen[-1] if s.pick == "latest" else chosen[0]) if chosen else none)
            elif s.encoding == SCALAR:
                mean = sum((Fraction(v) for v in chosen), Fraction(0)) / len(chosen) if chosen else Fraction(0)
                out.append(int(mean) if mean.denominator == 1 else mean)
            elif not chosen:
                out.append(0 if s.encoding == WORD else None)
            elif len({value_key(v) for v in chosen}) == 1:
                out.append(chosen[0])
            else:
                raise HardwireError(f"aggregate {s.label!r} selects several different values at position {q}")
    else:
        raise TypeError(f"unknown SOp {type(s).__name__}")
    for i, v in enumerate(out):
        if (wrap(v, s.bits) != v if s.encoding == WORD else not s.holds(v)):
            raise AssertionError(f"{s.label} = {v!r} at {i} is outside its inferred value set")
    memo[id(s)] = out
    return out


@dataclass
class Result:
    """What a run produced: the outputs and, for a loop, the passes taken and the values emitted."""
    outputs: dict[str, list]
    steps: int = 0
    halted: bool = True
    emitted: list = field(default_factory=list)


def uniform(prog: Program, s: SOp, memo: dict, n: int, what: str):
    """A loop's halt test and emitted value are one value for the whole sequence."""
    vals = value(prog, s, memo, n)
    if len({value_key(v) for v in vals}) != 1:
        raise HardwireError(f"the loop's {what} differs between positions ({vals[:4]}...); it must be the same "
                            "value everywhere (compute it from aggregates or registers)")
    return vals[0]


def execute(prog: Program, tokens: list, max_steps: int = 10_000,
            on_step: Callable[[int, dict], None] | None = None) -> Result:
    """Run `prog` on `tokens`: a program with a loop runs passes until its halt test or `max_steps`.

    on_step(step, registers) is called after every pass with each register's values by label.
    """
    validate_input(prog, tokens)
    n = len(tokens)
    lp = prog.loop
    regs: dict[int, list] = {}
    steps, halted, emitted = 0, True, []
    if lp is not None:
        init = {"tokens": list(tokens)}
        regs = {id(r): value(prog, r.init, init, n) for r in lp.registers}
        halted = False
        while True:
            memo: dict[Any, Any] = {"tokens": list(tokens), "regs": regs}
            if lp.halt is not None and uniform(prog, lp.halt, memo, n, "halt test") is True:
                halted = True
                break
            if steps >= max_steps:
                break
            if lp.emit is not None:
                v, when = lp.emit
                if when is None or uniform(prog, when, memo, n, "emit condition") is True:
                    emitted.append(uniform(prog, v, memo, n, "emitted value"))
            new = dict(regs)
            for r in lp.registers:
                if r.label in lp.updates:
                    new[id(r)] = value(prog, lp.updates[r.label], memo, n)
            regs = new
            steps += 1
            if on_step is not None:
                on_step(steps, {r.label: regs[id(r)] for r in lp.registers if not r.label.startswith("__")})
    memo = {"tokens": list(tokens), "regs": regs}
    outputs = {name: value(prog, s, memo, n) for name, s in prog.outputs.items()}
    return Result(outputs, steps, halted, emitted)


def generate(prog: Program, prompt: list, max_len: int | None = None) -> list:
    """A generating program: append its `generate` output at the last position until a stop token or
    max_len tokens; returns the tokens generated (not the prompt)."""
    tokens = list(prompt)
    limit = min(max_len or prog.max_len, prog.max_len)
    validate_input(prog, tokens)
    out = []
    while len(tokens) < limit:
        nxt = run(prog, tokens)[prog.generate][-1]
        tokens.append(nxt)
        out.append(nxt)
        if any(value_key(nxt) == value_key(t) for t in prog.stop):  # by type: 1 does not stop on true
            break
    return out


def run(prog: Program, tokens: list, max_steps: int = 10_000) -> dict[str, list]:
    """Every output of `prog` on `tokens`, one value per position."""
    return execute(prog, tokens, max_steps).outputs
