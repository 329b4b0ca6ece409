"""`hardwire sweep PROG.hw --lengths 8,64,512`: is a construction still exact as inputs grow?

For each length the program is compiled with its length param set (`--length-param`, default `n`),
run on random inputs of that length, and compared with a plain-Python reference when the program
has one here (parity, addition), else with the interpreter. The longest exact length per dtype is
what `bench/results/lengths.json` records.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def running_parity_case(rng, n):
    xs = [rng.randint(0, 1) for _ in range(n)]
    want, p = [], 0
    for x in xs:
        p ^= x
        want.append(p)
    return xs, want


def parity_case(rng, n):
    xs = [rng.randint(0, 1) for _ in range(n)]
    return xs, [sum(xs) % 2 == 1] * n


def add_operands(rng, n) -> tuple[int, int]:
    a, b = rng.randrange(10 ** n), rng.randrange(10 ** n)
    if rng.random() < 0.5:  # half the cases carry through a long run of 9s
        b = min(max(10 ** n - 1 - a + rng.randint(0, 1), 0), 10 ** n - 1)
    return a, b


def digits(x: int, n: int, lsb_first: bool = True) -> list[int]:
    ds = [int(c) for c in str(x).rjust(n, "0")]
    return ds[::-1] if lsb_first else ds


def add_lsb_case(rng, n):
    a, b = add_operands(rng, n)
    return digits(a, n) + ["+"] + digits(b, n), a + b


def add_msb_case(rng, n):
    a, b = add_operands(rng, n)
    return digits(a, n, False) + ["+"] + digits(b, n, False), a + b


def add_cot_case(rng, n):
    a, b = add_operands(rng, n)
    return digits(a, n) + ["+"] + digits(b, n) + ["="], a + b


def from_digits(ds: list, lsb_first: bool = True) -> int:
    return int("".join(map(str, ds[::-1] if lsb_first else ds)))


@dataclass(frozen=True)
class Reference:
    """A plain-Python reference for a construction: random cases at length n, and how to read the model."""
    case: Callable  # (rng, n) -> (input tokens, wanted answer)
    check: Callable  # (model, input, n) -> the model's answer
    span: int = 2  # positions (and offsets) reach span * n + 3: the word width must hold them, with a sign bit


def generated(model, xs, n):
    from hardwire.runtime.generate import generate
    return generate(model, [xs])[0]


REFERENCES = {
    "parity_count": Reference(running_parity_case, lambda m, xs, n: m.run([xs])[0]["parity"]),
    "parity_cc": Reference(parity_case, lambda m, xs, n: m.run([xs])[0]["parity"]),
    "parity_cot": Reference(running_parity_case, lambda m, xs, n: generated(m, xs + ["="], n)),
    "add_lsb": Reference(add_lsb_case, lambda m, xs, n: (lambda o: from_digits(o["sum"][n + 1:])
                                                         + int(o["carry_out"][-1]) * 10 ** n)(m.run([xs])[0])),
    "add_msb": Reference(add_msb_case, lambda m, xs, n: (lambda o: from_digits(o["sum"][n + 1:], False)
                                                         + int(o["carry_out"][n + 1]) * 10 ** n)(m.run([xs])[0])),
    "add_cot": Reference(add_cot_case, lambda m, xs, n: from_digits(generated(m, xs, n)), span=3),
}


def sweep(program: str, lengths: list[int], dtype: str, samples: int, length_param: str = "n",
          device: str = "cpu", extra: dict | None = None) -> dict:
    import torch

    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.interpret import run
    from hardwire.compiler.pipeline import compile_program
    from hardwire.harness import sample_input
    from hardwire.runtime.model import from_compiled
    name = Path(program).stem
    rows = []
    for n in lengths:
        params = {length_param: n, **(extra or {})}
        if "param bits" in Path(program).read_text():  # word width: every position, and a sign bit to spare
            span = REFERENCES[name].span if name in REFERENCES else 2
            params.setdefault("bits", max((span * n + 2).bit_length() + 1, 6))  # and digit sums to 19
        prog = check_file(program, params)
        t0 = time.perf_counter()
        compiled = compile_program(prog)
        model = from_compiled(compiled, device, torch.float64 if dtype == "float64" else torch.float32)
        rng = random.Random(n)
        bad = 0
        for _ in range(samples):
            if name in REFERENCES:
                xs, want = REFERENCES[name].case(rng, n)
                bad += REFERENCES[name].check(model, xs, n) != want
            else:
                xs = sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, exact=prog.exact_len)
                bad += model.run([xs])[0] != run(prog, xs)
        rows.append({"length": n, "samples": samples, "mismatches": bad, **compiled.summary(),
                     "seconds": round(time.perf_counter() - t0, 2)})
    exact = [r["length"] for r in rows if r["mismatches"] == 0]
    first_bad = next((r["length"] for r in rows if r["mismatches"]), None)
    return {"program": name, "dtype": dtype, "reference": "python" if name in REFERENCES else "interpreter",
            "rows": rows, "max_exact_length": max([x for x in exact if first_bad is None or x < first_bad],
                                                  default=0)}
