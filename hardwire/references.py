"""Plain-Python references for the programs in programs/: each computation written directly (Python ints, sum,
sorted), with inputs that exercise it. tests/test_programs.py checks the interpreter against them, and
`hardwire bench programs` times them beside the interpreter and the compiled model on the same inputs.

SUBLEQ and the Turing machines have their own references (hardwire/machines/subleq/emulator.py,
hardwire/machines/turing/tm.py `simulate`).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from hardwire.compiler.core.sops import Program
from hardwire.harness import sample_input


@dataclass(frozen=True)
class Reference:
    """answer(x): the result computed directly; read(result, x): the interpreter's or the model's result (an
    output dict, or the generated tokens) in the same form; sample(rng, prog): one input (default: random
    tokens of the vocabulary at max_len)."""
    answer: Callable[[list], object]
    read: Callable[[object, list], object] = lambda result, x: result
    sample: Callable[[random.Random, Program], list] | None = None


def lsb(x: int, n: int) -> list[int]:
    """The n decimal digits of x, least significant first."""
    return [int(c) for c in reversed(str(x).rjust(n, "0"))]


def number(digits: list) -> int:
    """The integer whose decimal digits, least significant first, are `digits` (any integers: a wrong digit
    gives a wrong number, not an error)."""
    return sum(int(d) * 10 ** i for i, d in enumerate(digits))


def operands(x: list) -> tuple[list, list]:
    """The two digit lists of an addition input `a + b` (or prompt `a + b =`)."""
    i = x.index("+")
    return x[:i], [d for d in x[i + 1:] if d != "="]


def two_numbers(prog: Program, rng: random.Random) -> tuple[int, int, int]:
    """n, and two random n-digit operands (leading zeros allowed)."""
    n = (prog.max_len - 1) // 2 if prog.generate is None else (prog.max_len - 3) // 3
    return n, rng.randrange(10 ** n), rng.randrange(10 ** n)


def add_lsb_input(rng: random.Random, prog: Program) -> list:
    n, a, b = two_numbers(prog, rng)
    return lsb(a, n) + ["+"] + lsb(b, n)


def add_msb_input(rng: random.Random, prog: Program) -> list:
    n, a, b = two_numbers(prog, rng)
    return lsb(a, n)[::-1] + ["+"] + lsb(b, n)[::-1]


def add_cot_input(rng: random.Random, prog: Program) -> list:
    n, a, b = two_numbers(prog, rng)
    return lsb(a, n) + ["+"] + lsb(b, n) + ["="]


def bits_then_equals(rng: random.Random, prog: Program) -> list:
    return [rng.randrange(2) for _ in range((prog.max_len - 1) // 2)] + ["="]


def exact_bits(rng: random.Random, prog: Program) -> list:
    return [rng.randrange(2) for _ in range(prog.max_len)]


def add_lsb_read(out: dict, x: list) -> int:
    """add_lsb writes the sum's digits at b's positions, and the last carry at the last position."""
    n = x.index("+")
    return number(out["sum"][n + 1:]) + int(out["carry_out"][-1]) * 10 ** n


def add_msb_read(out: dict, x: list) -> int:
    """add_msb writes the sum's digits, most significant first, at b's positions; the top carry just after '+'."""
    n = x.index("+")
    return int(out["carry_out"][n + 1]) * 10 ** n + number(out["sum"][n + 1:][::-1])


def add_answer(x: list) -> int:
    a, b = operands(x)
    return number(a) + number(b)


def add_msb_answer(x: list) -> int:
    a, b = operands(x)
    return number(a[::-1]) + number(b[::-1])


def add_cot_answer(x: list) -> list[int]:
    """The n + 1 digits of a + b, least significant first: what add_cot generates."""
    a, b = operands(x)
    return lsb(number(a) + number(b), len(a) + 1)


def running_parity(xs: list) -> list[int]:
    out, p = [], 0
    for t in xs:
        p ^= t if t != "=" else 0
        out.append(p)
    return out


def dyck1(xs: list) -> dict:
    out, depth, ok = [], 0, True
    for t in xs:
        depth += 1 if t == "(" else -1
        ok = ok and depth >= 0
        out.append(ok and depth == 0)
    return {"balanced": out}


def dyck2(xs: list) -> dict:
    out, r, q, ok = [], 0, 0, True
    for t in xs:
        r += {"(": 1, ")": -1}.get(t, 0)
        q += {"[": 1, "]": -1}.get(t, 0)
        ok = ok and r >= 0 and q >= 0
        out.append(ok and r == 0 and q == 0)
    return {"balanced": out}


def pair_balance(xs: list) -> dict:
    return {"balance": [Fraction(xs[:i + 1].count("(") - xs[:i + 1].count(")"), i + 1) for i in range(len(xs))]}


# Programs whose interpreter output dict is the answer itself (tests/test_programs.py checks them on random input).
LIBRARY = {
    "dyck1": Reference(dyck1),
    "dyck2": Reference(dyck2),
    "pair_balance": Reference(pair_balance),
    "sort": Reference(lambda xs: {"sorted": sorted(xs)}),
    "caesar": Reference(lambda xs: {"shifted": [chr((ord(t) - ord("a") + 1) % 4 + ord("a")) for t in xs]}),
    "parity_count": Reference(lambda xs: {"parity": running_parity(xs)}),
    "length": Reference(lambda xs: {"len": [len(xs)] * len(xs)}),
    "reverse": Reference(lambda xs: {"reversed": xs[::-1]}),
    "histogram": Reference(lambda xs: {"hist": [xs.count(t) for t in xs]}),
    "sort_unique": Reference(lambda xs: {"sorted": sorted(xs)}),
    "frac_prevs": Reference(lambda xs: {"frac": [Fraction(xs[:i + 1].count("x"), i + 1) for i in range(len(xs))]}),
}

# Parity and addition: the answer in its own form (a Python int, a bool, generated tokens).
ARITHMETIC = {
    "parity_cc": Reference(lambda xs: sum(xs) % 2 == 1, lambda out, x: out["parity"][-1], exact_bits),
    "parity_cot": Reference(lambda x: running_parity(x[:-1]), lambda gen, x: list(gen), bits_then_equals),
    "add_lsb": Reference(add_answer, add_lsb_read, add_lsb_input),
    "add_msb": Reference(add_msb_answer, add_msb_read, add_msb_input),
    "add_cot": Reference(add_cot_answer, lambda gen, x: list(gen), add_cot_input),
}

REFERENCES = {**LIBRARY, **ARITHMETIC}


def sample(name: str, prog: Program, rng: random.Random) -> list:
    """One input of program `name` (as compiled in prog), at its longest: max_len tokens, or every token once for
    a `distinct` program with fewer tokens than that."""
    ref = REFERENCES[name]
    if ref.sample is not None:
        return ref.sample(rng, prog)
    if prog.word_vocab:
        return sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, prog.word_bits, exact=True)
    vocab = list(prog.vocab)
    if prog.distinct:
        return rng.sample(vocab, min(prog.max_len, len(vocab)))
    return [rng.choice(vocab) for _ in range(prog.max_len)]
