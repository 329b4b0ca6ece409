"""The parameter budget (`--max-params`): its default, and which value of the program a refusal names.

Every parameter of a compiled model lies in a matrix with one side of d_model: the model has d_model * K
parameters, where each residual dimension is one of d_model and K sums the embedding rows, 2 per hidden unit
and 4 * d_head per head. A value owns its residual dims and the units and heads that compute it; splitting
each product term between its two owners (dims * K + d_model * k) / 2 gives shares that add up to the model
(less the embedding rows). The refusal names the value with the largest share, at its line:column.
"""
from __future__ import annotations

from dataclasses import dataclass

from hardwire.compiler.core.errors import HardwireError

# Every program in programs/ at its defaults is far below this (the largest, subleq at 256 words of 16 bits,
# has 526,032; parity_count at n = 2048, measured exact, has 29.5 million): 200 MB as float32. It refuses
# the 211-million-parameter onehot() of two means and reverse at max_len 256 (209 million). Measured by
# tests/test_size_budget.py::test_every_program_fits_the_default_budget.
DEFAULT_MAX_PARAMS = 50_000_000


@dataclass
class Share:
    """One program value's part of the model: residual dims, hidden units and head parameters it adds."""
    sop: object
    dims: int = 0
    units: int = 0
    head_params: int = 0

    def params(self, per_dim: float, d: int) -> int:
        """The share of a model of d * per_dim parameters: half of dims * K plus half of d * this value's k."""
        return round((self.dims * per_dim + 2 * d * self.units + self.head_params) / 2)


def shares(layout, sops: list, heads: list[tuple[object, int]], units: list[tuple[object, int]]) -> list[Share]:
    """Each value's share: its residual dims in `layout` (for every value in `sops`), `heads` as (sop,
    d_head) per planned head and `units` as (sop, hidden units) per planned MLP block."""
    d = len(layout.labels)
    by: dict[int, Share] = {}
    for sop in sops:
        if id(sop) not in by:
            by[id(sop)] = Share(sop, sum(len(layout.dims.get((id(sop), part), ())) for part in ("", ".frac")))
    for sop, n in units:
        by.setdefault(id(sop), Share(sop)).units += n
    for sop, dh in heads:
        by.setdefault(id(sop), Share(sop)).head_params += 4 * d * dh
    return list(by.values())


def largest(parts: list[Share], params: int, d: int) -> Share | None:
    """The share with the most parameters (None when there is none)."""
    per_dim = params / max(1, d)
    return max(parts, key=lambda s: s.params(per_dim, d), default=None)


def refuse(prog, size: dict, max_params: int, parts: list[Share]) -> HardwireError:
    """The one-line refusal: the size, the budget, and the value responsible at its line:column."""
    d = size["d_model"]
    msg = (f"the compiled model would have {size['params']} parameters (layers {size['layers']}, d_model {d}, "
           f"d_mlp {size['d_mlp']}), over the budget of {max_params} (--max-params)")
    top = largest(parts, size["params"], d)
    line = column = None
    if top is not None:
        sop = top.sop
        what = [f"{top.dims:,} residual dims" if top.dims else "", f"{top.units:,} hidden units" if top.units else "",
                "an attention head" if top.head_params else ""]
        named = sop.label if sop.label.isidentifier() and not sop.label.startswith("_") else "the value here"
        share = top.params(size["params"] / max(1, d), d)
        msg += (f"; the largest part is {named} ({', '.join(w for w in what if w)}: {share:,} parameters, "
                f"{100 * share / size['params']:.0f}%)")
        if sop.line:
            line, column = sop.line, sop.column
    return HardwireError(msg + "; lower max_len or simplify the program", prog.file, line, column)
