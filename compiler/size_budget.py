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
        dims = f"{top.dims:,} residual dim{'' if top.dims == 1 else 's'}"
        what = [dims if top.dims else "", f"{top.units:,} hidden units" if top.units else "",
                "an attention head" if top.head_params else ""]
        named = sop.label if all(p.isidentifier() for p in sop.label.split(".")) and not sop.label.startswith("_") \
            else "the value here"   # a name the program wrote, or one made from it (split.py's `rank.major`)
        share = top.params(size["params"] / max(1, d), d)
        msg += (f"; the largest part is {named} ({', '.join(w for w in what if w)}: {share:,} parameters, "
                f"{100 * share / size['params']:.0f}%)")
        if sop.line:
            line, column = sop.line, sop.column
    return HardwireError(msg + "; lower max_len or simplify the program", prog.file, line, column)


def named(sop) -> str:
    """A value as the program names it: its name, else "the value at line:column"."""
    if getattr(sop, "text", "") == "snap":
        return f"{named(sop.target)} re-quantized"
    if sop.label.isidentifier() and not sop.label.startswith("_"):
        return sop.label
    return f"the value at {sop.line}:{sop.column}" if sop.line else "an internal value"


def held(x) -> str:
    """How a value is held, in a few words: "16 values" or "a 16-bit word"."""
    return f"a {x.bits}-bit word" if x.encoding == "word" else f"{len(x.values)} values"


def plural(n: int, one: str) -> str:
    return f"{n:,} {one}" + ("" if n == 1 else "s")


def why(s: Share) -> str:
    """What makes a share large, in the program's terms."""
    from hardwire.compiler.core.sops import Map
    sop = s.sop
    if s.units and isinstance(sop, Map) and len(sop.inputs) > 1:
        over = " x ".join(f"{named(x)} ({held(x)})" for x in sop.inputs)
        if all(x.encoding != "word" for x in sop.inputs):
            combos = 1
            for x in sop.inputs:
                combos *= len(x.values)
            return f"a map that looks up {combos:,} combinations of {over}: {plural(s.units, 'hidden unit')}"
        return f"a map of {over}: {plural(s.units, 'hidden unit')}"
    if s.units and getattr(sop, "text", "") == "snap":
        return (f"a copy onto itself in unit steps, so an equality head can read it as a number: "
                f"{plural(s.units, 'hidden unit')} over {held(sop)}")
    if s.units:
        return f"{plural(s.units, 'hidden unit')} over {held(sop)}"
    dims = f"{plural(s.dims, 'residual dim')} ({sop.encoding}, {held(sop)})"
    if s.head_params:
        return "its attention head" + (f" and {dims}" if s.dims else "")
    return dims


def hint(s: Share) -> str:
    """What the program can do about a share of this kind, with what the language has today."""
    from hardwire.compiler.core.sops import Map
    if s.units and isinstance(s.sop, Map) and len(s.sop.inputs) > 1:
        return ("a map of several values is one lookup over every combination of their values: map fewer values "
                "at once, or narrow their value sets")
    if s.units and isinstance(s.sop, Map):
        return "a map of one value costs about one hidden unit per value it can take: narrow its value set"
    if s.units:
        return ("its MLP costs hidden units in proportion to the values it can take (a staircase over them): a "
                "smaller max_len or value set makes it smaller")
    if s.sop.encoding == "onehot" and len(s.sop.values) > 16:
        return "a one-hot value takes one residual dim per value: a word (`word(...)`) takes one per bit"
    return "this part is already small for what it holds"


def contributors(size: dict, parts: list[Share], top: int = 3) -> list[dict]:
    """The values with the largest shares of the model, largest first, each with its place and why: what
    `hardwire compile` prints under "largest parts" (and --json carries)."""
    d = size["d_model"]
    per_dim = size["params"] / max(1, d)
    ranked = sorted(parts, key=lambda s: -s.params(per_dim, d))
    out = []
    for s in ranked[:top]:
        share = s.params(per_dim, d)
        if share <= 0:
            break
        out.append({"value": named(s.sop), "line": s.sop.line, "column": s.sop.column, "params": share,
                    "percent": round(100 * share / max(1, size["params"]), 1), "why": why(s), "hint": hint(s)})
    return out

