"""Residual stream layout: a labelled dimension for every value the model carries."""
from __future__ import annotations

from dataclasses import dataclass, field

from hardwire.compiler.core.sops import (
    CODE,
    ONEHOT,
    SCALAR,
    WORD,
    Affine,
    Const,
    SOp,
    Width,
    code_grid,
    is_flag,
    is_length,
)

BOS, NOT_BOS = 0, 1


def fmt(v) -> str:
    return "none" if v is None else str(v)


@dataclass
class Layout:
    labels: list[str] = field(default_factory=lambda: ["bos", "not_bos"])
    dims: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    index: int | None = None  # a scalar copy of the position index, for `latest`/`earliest`
    sops: dict[tuple[int, str], SOp] = field(default_factory=dict)  # the value each subspace holds
    word_bits: int = 0  # the widest word: heads leak 2^-word_bits less (wire.scale)
    largest: list = field(default_factory=list)  # the values with the largest shares of the model (size_budget)
    position_form: bool = False  # the position rows are a formula, not a table (wire.position_form)

    def index_dim(self) -> int:
        if self.index is None:
            self.index = len(self.labels)
            self.labels.append("index")
        return self.index

    def alloc(self, s: SOp, part: str = "") -> list[int]:
        key = (id(s), part)
        if key not in self.dims:
            name = s.label + part
            if s.encoding == WORD and not part:
                names = [f"{name}.b{k}" for k in range(s.bits)]
            elif s.encoding == ONEHOT and not part:
                names = [f"{name}={fmt(v)}" for v in s.values]
            else:
                names = [name]
            start = len(self.labels)
            self.labels += names
            self.dims[key] = list(range(start, start + len(names)))
            self.sops[key] = s
            if s.square and not part:   # its square beside it, allocated with it (encode.numbers)
                self.alloc(s, ".sq")
        return self.dims[key]

    def read(self, s: SOp, part: str = "") -> list[dict[int, float]]:
        """Linear readers: one {dim: coeff} per one-hot value (or a single one for a scalar)."""
        if isinstance(s, Affine):  # no dimensions of its own: the linear form of its terms (constant on not_bos)
            form = {NOT_BOS: float(s.const)} if s.const else {}
            for c, x in s.terms:
                for dim, k in self.number(x).items():
                    form[dim] = form.get(dim, 0.0) + float(c) * k
            return [form]
        if isinstance(s, Const):
            if s.encoding == ONEHOT:
                return [{NOT_BOS: 1.0}]
            return [{NOT_BOS: float(s.value)}]
        return [{d: 1.0} for d in self.dims[(id(s), part)]]

    def hot(self, s: SOp, part: str = "") -> list[dict[int, float]]:
        """One-hot readers, one per value: read() for a one-hot value; for a flag (encode.flags: a boolean in one
        0/1 dim) not_bos - dim for false and dim for true, both 0 at BOS like every one-hot indicator."""
        if is_flag(s):
            (dim,) = self.dims[(id(s), part)]
            return [{NOT_BOS: 1.0, dim: -1.0}, {dim: 1.0}]
        return self.read(s, part)

    def number(self, s: SOp, power: int = 1) -> dict[int, float]:
        """s (or s**power) as one linear form: a scalar's own dim; a one-hot number's dims weighted by their
        values (exactly one is 1 at a real position, so the form is the value); an Affine's form."""
        target = getattr(s, "target", None)  # a snap (a mux onto its own value) is read where it writes
        if target is not None:
            s = target
        if s.encoding == ONEHOT and not isinstance(s, (Affine, Const)):
            return {d: float(v) ** power for d, v in zip(self.dims[(id(s), "")], s.values) if v}
        if power == 2 and s.square:
            return {self.alloc(s, ".sq")[0]: 1.0}
        if power != 1:
            raise ValueError(f"{s.label}: only a one-hot number is read as a power")
        return self.read(s)[0]

    def frac(self, w: Width) -> list[int]:
        return self.alloc(w, ".frac")


def groups(layout: Layout, max_len: int) -> list[dict]:
    """Every residual subspace with its value set, for the certifier: name, dims, encoding and codes.

    A one-hot group's codes are its unit vectors, a scalar's its grid, a word's its bits (with its range when
    known); `index` (for latest/earliest) holds the position. bos/not_bos are the fixed group 0.
    """
    out: list[dict] = []
    for (key, part), dims in layout.dims.items():
        s = layout.sops[(key, part)]
        g: dict = {"name": s.label + part, "dims": dims, "encoding": s.encoding if not part else SCALAR}
        if part == ".frac":
            g["grid"] = sorted({1.0 / (w + 1) for w in s.values})
        elif part == ".sq":
            g["grid"] = sorted({float(v) ** 2 for v in s.values})
        elif s.encoding == WORD:
            g["bits"] = s.bits
            if s.vrange is not None:
                g["range"] = [int(s.vrange[0]), int(s.vrange[1])]
        elif s.encoding == SCALAR:
            g["grid"] = sorted({float(0 if v is None else v) for v in s.values})
        elif s.encoding == CODE:  # its value's index: the grid is 0, 1, ..., one per value; the values themselves
            g["grid"] = code_grid(len(s.values))                   # (typed JSON in the artifact) are the copy
            g["values"] = list(s.values)                           # the output's are checked against
        if not part and is_length(s):  # a count of every visible key: above every index (core/sops.combos)
            g["above_index"] = True
        out.append(g)
    if layout.index is not None and layout.position_form:   # the integers 0..max_len - 1, not listed
        out.append({"name": "index", "dims": [layout.index], "encoding": SCALAR, "integers": [0, max_len - 1]})
    elif layout.index is not None:
        out.append({"name": "index", "dims": [layout.index], "encoding": SCALAR,
                    "grid": [float(i) for i in range(max_len)]})
    return out
