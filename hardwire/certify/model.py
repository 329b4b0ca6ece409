"""The certifier's view of a weight file: its weights as float64, its value sets (groups), BOS's residual, and the
code enumeration every block's analysis reads (hardwire/certify/certifier.py analyses; program.py compares)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hardwire.compiler.core.errors import HardwireError

UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}


CAP = 1 << 21  # most code combinations enumerated for one unit or one side of a head; past it, a lattice


PAIR_CAP = 1 << 26  # most (query code, key code) pairs scanned for one head, in chunks


BOS, NOT_BOS = 0, 1


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = nu / (1 - nu): the relative error bound of a sum or dot product of n terms."""
    return n * u / (1 - n * u) if n * u < 1 else math.inf


@dataclass
class Group:
    """A residual subspace and its ideal codes (rows over its dims); `codes` None: too many to list."""
    name: str
    dims: list[int]
    encoding: str
    codes: np.ndarray | None
    lo: np.ndarray  # per dim, the least and greatest ideal value
    hi: np.ndarray
    integer: bool  # every code is an integer vector
    grid: list[float] | None = None
    above_index: bool = False  # a count of every visible key (`length`): above the position's index

    def size(self) -> int:
        return len(self.codes) if self.codes is not None else 1 << 62


def make_group(g: dict) -> Group:
    dims, enc = list(g["dims"]), g["encoding"]
    if enc == "onehot":
        codes = np.eye(len(dims))
    elif enc in ("scalar", "code"):
        codes = np.array(g["grid"], dtype=np.float64)[:, None]
    else:
        bits = g["bits"]
        lo, hi = g.get("range", [-(1 << (bits - 1)), (1 << (bits - 1)) - 1])
        if hi - lo < (1 << 16):
            v = np.arange(lo, hi + 1)
            codes = ((v[:, None] >> np.arange(bits)) & 1).astype(np.float64)
        else:
            zero_one = np.zeros((1, bits)), np.ones((1, bits))
            return Group(g["name"], dims, enc, None, zero_one[0][0], zero_one[1][0], True)
    integer = bool(np.all(codes == np.round(codes)))
    return Group(g["name"], dims, enc, codes, codes.min(0), codes.max(0), integer, g.get("grid"),
                 bool(g.get("above_index")))


@dataclass
class Finding:
    """One block's analysis: where, what was shown, and the error bound it hands on."""
    where: str
    detail: str
    stats: dict = field(default_factory=dict)


class Refused(Exception):
    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where, self.why = where, why


class Model:
    """The weights (float64 copies of the stored values) and the groups of one weight file.

    reference: the weights its program compiles to (float32-rounded). With one, the analysis bounds the float
    model's distance from the ideal model on the *reference* weights, whose codes the value sets describe
    (hardwire/certify/program.py adds each block's deviation); without, from the ideal model on its own weights."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict, labels: list[str], outputs: dict,
                 reference: dict[str, np.ndarray] | None = None):
        if "groups" not in config:
            raise HardwireError("this weight file has no value sets (it predates `hardwire certify`); "
                                "compile the program again")
        from hardwire.compiler.artifact import tabled
        (tensors, config), reference = tabled(tensors, config), reference and tabled(reference, config)[0]
        self.t, self.config, self.labels, self.outputs = tensors, config, labels, outputs
        self.d = config["d_model"]
        self.groups = [make_group(g) for g in config["groups"]]
        self.owner = np.full(self.d, -1)
        for k, g in enumerate(self.groups):
            self.owner[g.dims] = k
        self.integer = np.ones(self.d, bool)
        self.xmax = np.ones(self.d)  # per dim, the largest |ideal value| (bos, not_bos: 1)
        for g in self.groups:
            self.integer[g.dims] = g.integer
            self.xmax[g.dims] = np.maximum(np.abs(g.lo), np.abs(g.hi))
        self.bos = self.bos_residuals()
        self.cache: dict = {}
        tok, pos = self.t["embed.tokens"][1:], self.t["embed.positions"][1:]
        self.positional = [not tok[:, g.dims].any() and len({r.tobytes() for r in pos[:, g.dims]}) == len(pos)
                           for g in self.groups]  # a position-only group with a distinct code at each position
        self.scalar_dims = np.zeros(self.d)
        for g in self.groups:
            if g.encoding == "scalar":
                self.scalar_dims[g.dims] = 1.0
        self.xmax_pos = self.xmax.copy()  # at a non-BOS position: bos is 0
        self.xmax_pos[BOS] = 0.0
        self.ref = None if reference is None else Model(reference, config, labels, outputs)
        if self.ref is not None:  # which groups are positional is the program's fact, not the file's
            self.positional = self.ref.positional
        self.program: str = config.get("program", "?")
        self.dev: dict = {}  # per block, how far its ideal output on these weights is from the reference's

    def snaps(self, w_in: np.ndarray, w_out: np.ndarray) -> bool:
        """A unit whose every partial sum (in and out) is, ideally, a multiple of 1/16 well inside the dtype's
        integers: integer codes, weights on a 1/4 grid, magnitudes below 2^20. Such sums round back onto
        their ideal value whenever their error is below half a float step there (Lemma P)."""
        reads = np.nonzero(w_in)[0]
        return bool(np.all(self.integer[reads]) and dyadic(w_in) and dyadic(w_out)
                    and np.abs(w_in) @ self.xmax < 2 ** 20 and np.abs(w_out).max(initial=0) < 2 ** 8)

    def w(self, name: str) -> np.ndarray | None:
        return self.t.get(name)

    def bos_residuals(self) -> list[np.ndarray]:
        """BOS's residual before each layer (it attends to itself only; checked per head), in float64."""
        x = self.t["embed.tokens"][0] + self.t["embed.positions"][0]
        out = [x]
        for i in range(self.config["n_layers"]):
            x = self.bos_layer(x, i)
            out.append(x)
        return out

    def bos_layer(self, x: np.ndarray, i: int) -> np.ndarray:
        wq = self.w(f"layers.{i}.attn.W_Q")
        if wq is not None:  # alone in its sequence, BOS's softmax is 1 on itself
            for h in range(wq.shape[0]):
                x = x + (x @ self.w(f"layers.{i}.attn.W_V")[h]) @ self.w(f"layers.{i}.attn.W_O")[h]
        y = x.copy()
        w_in = self.w(f"layers.{i}.mlp.W_in")
        if w_in is not None:
            y = y + np.maximum(x @ w_in, 0) @ self.w(f"layers.{i}.mlp.W_out")
        n_in = self.w(f"layers.{i}.norm.W_in")
        if n_in is not None:
            v = (x @ n_in).reshape(-1, 2)
            c = v - v.mean(1, keepdims=True)
            var = (c * c).mean(1, keepdims=True) + np.array(self.config["layers"][i]["norm_eps"])[:, None]
            a = np.where(var > 0, c / np.sqrt(np.where(var > 0, var, 1)), 0.0).reshape(-1)
            y = y + a @ self.w(f"layers.{i}.norm.W_out")
        return y

    def label_of(self, dims) -> str:
        return ", ".join(self.labels[d] for d in dims[:4]) + (" ..." if len(dims) > 4 else "")


def codes_over(model: Model, rows: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
    """Every combination of the codes of the groups owning `rows`, as vectors over `rows` at a non-BOS
    position (not_bos 1, bos 0). None when there are more than CAP."""
    gids = sorted({int(model.owner[r]) for r in rows if model.owner[r] >= 0})
    groups = [model.groups[k] for k in gids]
    n = 1
    for g in groups:
        n *= g.size()
        if n > CAP:
            return None
    pos = {int(r): j for j, r in enumerate(rows)}
    out = np.zeros((n, len(rows)))
    if NOT_BOS in pos:
        out[:, pos[NOT_BOS]] = 1.0
    idx = np.indices([g.size() for g in groups]).reshape(len(groups), -1) if groups else np.zeros((0, 1), int)
    for g, ix in zip(groups, idx):
        cols = [j for j, dim in enumerate(g.dims) if dim in pos]
        out[:, [pos[g.dims[j]] for j in cols]] = g.codes[ix][:, cols]
    return out[inside(model, groups, idx)], gids


def inside(model: Model, groups: list[Group], idx: np.ndarray) -> np.ndarray:
    """Which combinations can meet at a real position: a count of every visible key (a group marked above_index,
    e.g. `length`) is at least 1 and above the index (the compiler leaves out the others too,
    compiler/core/sops.combos). Both one-hot: their codes' values are read from the labels."""
    keep = np.ones(idx.shape[1], bool)
    onehot = [(g, ix) for g, ix in zip(groups, idx) if g.encoding == "onehot"]
    value = lambda g: np.array([int(model.labels[d].split("=", 1)[1]) for d in g.dims])  # noqa: E731
    for gl, il in onehot:
        if gl.above_index:   # it counts the position itself, so it is at least 1
            keep &= value(gl)[il] >= 1
            for gi, ii in onehot:
                if gi.name == "indices":
                    keep &= value(gi)[ii] < value(gl)[il]
    return keep


def dyadic(w: np.ndarray, q: int = 2) -> bool:
    """Every entry a multiple of 2^-q."""
    return bool(np.all(w * 2 ** q == np.round(w * 2 ** q)))


def load_model(path: str) -> Model:
    """A weight file's tensors (as stored, in float64) and header, through the runtime's checked loader."""
    import torch

    from hardwire.runtime.model import load
    tm = load(path, device="cpu", dtype=torch.float64)
    if "groups" not in tm.config:
        raise HardwireError("this weight file has no value sets (it predates `hardwire certify`); compile the "
                            "program again", path)
    return Model({k.replace("__", "."): v.detach().numpy() for k, v in tm.w.items()}, tm.config, tm.labels,
                 tm.outputs)


def from_compiled(compiled) -> Model:
    """A CompiledModel straight from the compiler, its weights rounded to float32 as a saved file would be."""
    tensors = {k: v.astype(np.float32).astype(np.float64) for k, v in compiled.tensors.items()}
    return Model(tensors, compiled.config, compiled.labels, compiled.outputs, reference=tensors)
