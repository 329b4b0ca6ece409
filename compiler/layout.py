"""Residual stream layout: a labelled dimension for every value the model carries."""
from __future__ import annotations

from dataclasses import dataclass, field

from .sops import ONEHOT, WORD, Affine, Const, SOp, Width

BOS, NOT_BOS = 0, 1


def fmt(v) -> str:
    return "none" if v is None else str(v)


@dataclass
class Layout:
    labels: list[str] = field(default_factory=lambda: ["bos", "not_bos"])
    dims: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    index: int | None = None  # a scalar copy of the position index, for `latest`/`earliest`

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
        return self.dims[key]

    def read(self, s: SOp, part: str = "") -> list[dict[int, float]]:
        """Linear readers: one {dim: coeff} per one-hot value (or a single one for a scalar)."""
        if isinstance(s, Affine):  # no dimensions of its own: the linear form of its terms (constant on not_bos)
            form = {NOT_BOS: float(s.const)} if s.const else {}
            for c, x in s.terms:
                for dim, k in self.read(x)[0].items():
                    form[dim] = form.get(dim, 0.0) + float(c) * k
            return [form]
        if isinstance(s, Const):
            if s.encoding == ONEHOT:
                return [{NOT_BOS: 1.0}]
            return [{NOT_BOS: float(s.value)}]
        return [{d: 1.0} for d in self.dims[(id(s), part)]]

    def frac(self, w: Width) -> list[int]:
        return self.alloc(w, ".frac")
