"""Whether a dtype can hold a compiled model exactly, derived from its weights (proofs/subleq.md, "Precision").

A model whose MLP input weights are all multiples of 1/2 (every word and lookup construction) computes each
hidden unit's pre-activation as a sum of half-integers while the residual holds bits; every partial sum is
exact while it stays below 2^(p-1) (p: the dtype's significand bits, 24 for float32, 53 for float64), and the
widest such sum is sum |W_in| over a unit's rows. At or beyond that bound the proof's argument fails: for
SUBLEQ this is every word width over 20 bits in float32 and over 49 in float64, the limits the proofs state.
Models with other MLP weights (staircases over fractions, e.g. parity_count) are not judged here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_HALVES = {"float32": 2.0 ** 23, "float64": 2.0 ** 52}   # half-integers below this are exact
DTYPES = ("float32", "float64")


@dataclass
class Fit:
    """The widest half-integer pre-activation sum of a model and the layer it is in (None: not judged)."""
    widest: float | None
    layer: int | None

    def holds(self, dtype: str) -> bool:
        """Whether the dtype's exact half-integers reach the widest sum (always, when not judged)."""
        return self.widest is None or self.widest < EXACT_HALVES[dtype]


def fit(tensors: dict, config: dict) -> Fit:
    """Fit of a compiled model's tensors (numpy arrays or torch tensors, keyed as in the weight file)."""
    widest, where = 0.0, None
    for i in range(config["n_layers"]):
        w = tensors.get(f"layers.{i}.mlp.W_in")
        if w is None:
            continue
        w = np.abs(np.asarray(w.detach().cpu().double() if hasattr(w, "detach") else w, dtype=np.float64)[1:])
        if not np.array_equal(w * 2, np.round(w * 2)):
            return Fit(None, None)
        s = float(w.sum(0).max(initial=0.0))
        if s > widest:
            widest, where = s, i
    return Fit(widest, where)


def refusal(name: str, f: Fit, dtype: str) -> str:
    """The one line that refuses running `name` in a dtype that cannot hold it."""
    other = [d for d in DTYPES if f.holds(d)]
    hint = (f"use {other[0]} (--dtype {other[0]}; dtype=\"{other[0]}\" in the Python API)" if other
            else "no dtype hardwire runs holds it; use narrower words")
    return (f"{name} cannot run exactly in {dtype}: layer {f.layer}'s MLP sums half-integers up to {f.widest:.6g}, "
            f"at or beyond {dtype}'s exact range {EXACT_HALVES[dtype]:.6g} (2^{int(np.log2(EXACT_HALVES[dtype]))}); "
            f"{hint}")


def choose_dtype(name: str, f: Fit, asked: str | None) -> tuple[str, str | None]:
    """The dtype to run in and a note when it was switched: `asked` if it holds the model (HardwireError if
    it does not); with nothing asked, float32 when it holds the model, else float64 with a note."""
    from hardwire.compiler.core.errors import HardwireError
    if asked is not None:
        if not f.holds(asked):
            raise HardwireError(refusal(name, f, asked))
        return asked, None
    if f.holds("float32"):
        return "float32", None
    if f.holds("float64"):
        return "float64", (f"note: {name} runs in float64: layer {f.layer}'s MLP sums half-integers up to "
                           f"{f.widest:.6g}, beyond float32's exact 2^23")
    raise HardwireError(refusal(name, f, "float64"))
