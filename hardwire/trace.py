"""Trace: the labelled residual stream of one input after every layer, for reading a model in a notebook."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BOS = "<bos>"


class NoSuchLayer(KeyError):
    """A key Trace.attention does not hold, said with the keys it does hold (a KeyError, so `in` and .get work)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Attention(dict):
    """Trace.attention: layer (1-based, as in `Trace.layers`) -> that layer's pattern [heads, queries, keys], for
    the layers that have heads; any other key is an error naming the keys there are.

    >>> import hardwire
    >>> hardwire.compile_file("programs/reverse.hw").trace("a b").attention[0]
    Traceback (most recent call last):
    ...
    hardwire.trace.NoSuchLayer: trace.attention has no layer 0: it holds the layers with heads, 1 and 3 (layer 0 is \
the embedding, layers count from 1; model.heads names each head)
    """

    def __missing__(self, key):
        keys = sorted(self)
        held = ", ".join(map(str, keys[:-1])) + f" and {keys[-1]}" if len(keys) > 1 else str(keys[0]) if keys else ""
        what = f"it holds the layers with heads, {held}" if keys else "this model has no attention heads"
        note = " (layer 0 is the embedding, layers count from 1; model.heads names each head)" if keys else ""
        raise NoSuchLayer(f"trace.attention has no layer {key!r}: {what}{note}")


def one_hot(label: str) -> bool:
    """Is this dimension one value of a one-hot encoding (or the BOS flags)? Scalars and word bits are not."""
    return "=" in label or label in ("bos", "not_bos")


def show(label: str, value: float, eps: float) -> str:
    """`tokens=a` for a one-hot dimension at 1; `hist.frac=0.5` for a scalar or a bit; `tokens=a 0.5` otherwise."""
    if not one_hot(label):
        return f"{label}={value:.4g}"
    return label if abs(value - 1) <= eps else f"{label} {value:.4g}"


@dataclass(repr=False, eq=False)
class Trace:
    """The residual stream of one input after every layer, one label per dimension.

    Position 0 is the BOS token; the input's tokens follow at 1, 2, ... `layers[0]` is the embedding,
    `layers[i]` the stream after layer i (1-based), each an array [positions, d_model]; `attention[i]` is
    layer i's attention pattern [heads, query positions, key positions] (layers with heads only).
    For a looped program this is one pass of the loop body followed by the output layers.

    >>> import hardwire
    >>> trace = hardwire.compile_file("programs/histogram.hw").trace("a b a")
    >>> trace
    Trace(histogram: 4 positions, 1 layer, d_model 8)
    after layer 1 of 1:
      0 <bos>  bos, hist.frac=-1
      1 a      not_bos, tokens=a, hist.frac=0.3333, hist=2
      2 b      not_bos, tokens=b, hist.frac=0.5, hist=1
      3 a      not_bos, tokens=a, hist.frac=0.3333, hist=2
    >>> trace.attention[1].round(2)            # layer 1's head: each query over the keys (BOS and equal tokens)
    array([[[1.  , 0.  , 0.  , 0.  ],
            [0.33, 0.33, 0.  , 0.33],
            [0.5 , 0.  , 0.5 , 0.  ],
            [0.33, 0.33, 0.  , 0.33]]], dtype=float32)
    """
    program: str
    tokens: list
    labels: list[str]
    layers: list[np.ndarray]
    attention: dict[int, np.ndarray] = field(default_factory=Attention)

    def __post_init__(self) -> None:
        if not isinstance(self.attention, Attention):
            self.attention = Attention(self.attention)

    def features(self, position: int, layer: int = -1, eps: float = 1e-6) -> dict[str, float]:
        """The non-zero dimensions (|value| > eps) at one position after `layer`, by label.

        >>> import hardwire
        >>> hardwire.compile_file("programs/histogram.hw").trace("a b a").features(2, layer=0)
        {'not_bos': 1.0, 'tokens=b': 1.0}
        """
        row = self.layers[layer][position]
        return {self.labels[d]: float(row[d]) for d in np.flatnonzero(np.abs(row) > eps)}

    def table(self, layer: int = -1, eps: float = 1e-6) -> str:
        """One line per position: its token and its non-zero features after `layer` (0: the embedding).

        A one-hot dimension at 1 is shown by its label alone (`tokens=a`), any other dimension as
        `label=value` (`hist.frac=0.5`, a scalar; `x.b3=1`, a bit of a word).

        >>> import hardwire
        >>> print(hardwire.compile_file("programs/histogram.hw").trace("a b").table(0))
        embedding:
          0 <bos>  bos, hist.frac=-2
          1 a      not_bos, tokens=a
          2 b      not_bos, tokens=b
        """
        n = len(self.layers) - 1
        index = range(n + 1)[layer]
        names = [BOS] + [str(t) for t in self.tokens]
        width, pw = max(len(s) for s in names), len(str(len(names) - 1))
        lines = ["embedding:" if index == 0 else f"after layer {index} of {n}:"]
        for p, name in enumerate(names):
            shown = [show(label, v, eps) for label, v in self.features(p, index, eps).items()]
            lines.append(f"  {p:>{pw}} {name:<{width}}  {', '.join(shown)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        n = len(self.layers) - 1
        head = (f"Trace({self.program}: {len(self.tokens) + 1} positions, {n} layer{'s' * (n != 1)}, "
                f"d_model {len(self.labels)})")
        return head + "\n" + self.table()


def trace_rows(program: str, rows: list[list], labels: list[str], residuals: list, patterns: dict) -> list[Trace]:
    """One Trace per input of a batch from one traced forward pass: residuals [B, T, d] per layer and patterns
    {layer: [B, heads, T, T]}, each row cut to its own positions (BOS and its tokens), padding dropped."""
    out = []
    for b, tokens in enumerate(rows):
        n = len(tokens) + 1
        out.append(Trace(program, tokens, labels, [r[b, :n].cpu().numpy() for r in residuals],
                         Attention({i: a[b, :, :n, :n].cpu().numpy() for i, a in patterns.items()})))
    return out
