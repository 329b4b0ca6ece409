"""What ties a certificate to a program: the program a weight file carries, and each block's distance from it.

A weight file's header carries the program it was compiled from (`config.source`: its text, its params and a
sha256 of both). `hardwire certify` compiles that program (or the one given with --program) again, and then
1. every header field (config, labels, outputs) must equal what the compiler writes for it: the value sets,
   causal, exact_len, the BOS id, generate/stop, loops, decoders are the program's, not the file's say-so;
2. every block of the file's weights is compared with the reference's over the codes it reads (`precheck`):
   the embeddings row by row, each head's score path (it must select the same keys for every query code) and
   value path (W_V.W_O), each MLP (the units that differ, over every code they read), each norm (equal).
   A distance above DEV_LIMIT is refused, naming the tensor, head or neurons; a smaller one is added to the
   error bound of the dims it lands on (Model.dev) and propagates like every other error.
So the analysis in hardwire/certify/certifier.py bounds the float model's distance from the ideal model on the
reference's weights, whose residuals are the program's codes. proofs/README.md says what remains assumed.

Long: the header comparison and the per-block comparisons share the reference compilation and the code
enumeration; each block kind is one function here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from hardwire.compiler.artifact import program_hash, program_record  # noqa: F401 (named here by importers)
from hardwire.compiler.core.errors import HardwireError

DEV_LIMIT = 1e-3  # a block further than this (relative to 1 or the reference value) from the program's is refused
MAGNITUDE_LIMIT = 2.0 ** 64  # no compiled weight comes near this; past it products overflow the analysis
CHUNK = 1 << 14  # code combinations evaluated at once
DEV_CAP = 1 << 16  # most code combinations enumerated to compare one block; past it, a bound from the weights


def few_codes(m, rows: np.ndarray):
    """codes_over(m, rows) when the groups owning rows have at most DEV_CAP combinations, else None."""
    from hardwire.certify.model import codes_over
    n = 1
    for k in {int(m.owner[r]) for r in rows if m.owner[r] >= 0}:
        n *= m.groups[k].size()
        if n > DEV_CAP:
            return None
    return codes_over(m, rows)


@dataclass
class Claim:
    """The program a certificate is about, and where certify took it from."""
    name: str
    sha256: str
    params: dict
    origin: str  # "the file's header" or the --program path

    def sentence(self, length: int, dtype: str, kind: str) -> str:
        ps = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return (f"this file computes program {self.name}{f' ({ps})' if ps else ''} for every {kind} of length "
                f"up to {length} in {dtype} (program sha256 {self.sha256[:16]}, from {self.origin})")


def embedded_program(config: dict, path: str) -> tuple[str, dict, str]:
    """The (text, params, sha256) a weight file carries; HardwireError when it has none or it was edited."""
    rec = config.get("source")
    if rec is None:
        raise HardwireError("this weight file carries no program (config.source; files compiled before "
                            "`certify --program` lack it); certify it against its program with --program "
                            "PROG.hw, or compile it again", path)
    ok = isinstance(rec, dict) and isinstance(rec.get("text"), str) and isinstance(rec.get("params"), dict) \
        and all(isinstance(v, int) and not isinstance(v, bool) for v in rec["params"].values()) \
        and isinstance(rec.get("sha256"), str)
    if not ok:
        raise HardwireError("corrupt weight file: config.source needs a program text, integer params and a "
                            "sha256", path)
    if program_hash(rec["text"], rec["params"]) != rec["sha256"]:
        raise HardwireError("the program in this weight file does not match its sha256 (config.source was "
                            "edited); certify the file against its program with --program PROG.hw", path)
    return rec["text"], dict(rec["params"]), rec["sha256"]


def canonical(v):
    """A header value as it reads back from the file's JSON (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(v, sort_keys=True))


def first_difference(a, b, path: str) -> tuple[str, object, object] | None:
    """The first place (a dotted path) where two JSON values differ, with both values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}", a.get(k, "(absent)"), b.get(k, "(absent)")
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path, f"{len(a)} entries", f"{len(b)} entries"
        for k, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{k}]")
            if d:
                return d
        return None
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return path, a, b
    return None if a == b else (path, a, b)


# the header fields compared first: what the program says, before what its compilation makes of it
ORDER = ["program", "vocab", "max_len", "causal", "distinct", "exact_len", "params", "bos_token_id", "word_bits",
         "word_vocab", "generate", "loop", "n_layers", "d_model", "layers", "groups"]


def header_mismatch(config: dict, labels: list, outputs: dict, ref) -> str | None:
    """Where the file's header differs from the one the compiler writes for the reference program (its
    config.source aside: --program may name an equal program written differently), as one sentence."""
    mine = canonical({"config": {k: v for k, v in config.items() if k != "source"}, "labels": labels,
                      "outputs": outputs})
    want = canonical({"config": {k: v for k, v in ref.config.items() if k != "source"}, "labels": ref.labels,
                      "outputs": ref.outputs})
    d = None
    for k in [k for k in ORDER if k in mine["config"] or k in want["config"]] + sorted(
            set(mine["config"]) | set(want["config"])):
        d = d or first_difference({k: mine["config"].get(k, "(absent)")}, {k: want["config"].get(k, "(absent)")},
                                  "header.config")
    d = d or first_difference(mine, want, "header")
    if d is None:
        return None
    where, got, exp = d
    show = lambda v: (json.dumps(v) if not isinstance(v, str) else v)[:60]  # noqa: E731
    return (f"{where.removeprefix('header.')}: the file has {show(got)}, but program {ref.config['program']} "
            f"compiles to {show(exp)}")


# ---- the weights against the reference ------------------------------------------------------------------
def precheck(m) -> str | None:
    """Before any bound: the value sets cover the residual, no weight is past MAGNITUDE_LIMIT, and (with a
    reference) every block's distance from the program's (Model.dev). The refusal as one string, or None."""
    from hardwire.certify.model import Refused
    try:
        covered = np.zeros(m.d, bool)
        covered[:2] = True  # bos, not_bos
        for g in m.groups:
            covered[g.dims] = True
        if not covered.all():
            miss = np.nonzero(~covered)[0]
            raise Refused("config.groups", f"{len(miss)} residual dims have no value set ({m.label_of(list(miss))})")
        for name, w in sorted(m.t.items()):
            big = float(np.abs(w).max(initial=0))
            if not big < MAGNITUDE_LIMIT:
                at = np.unravel_index(int(np.argmax(np.abs(w))), w.shape)
                raise Refused(name, f"holds a weight of {big:.3g} at {list(map(int, at))}, too large to certify "
                                    "(the analysis takes weights below 2^64)")
        if m.ref is not None:
            deviations(m)
    except Refused as r:
        return str(r)
    except (OverflowError, FloatingPointError) as err:
        return f"analysis: a bound overflows ({err}): the weights are too large to certify"
    return None


def too_far(dev: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Entries further than DEV_LIMIT from the reference (relative where the reference is large)."""
    return dev > DEV_LIMIT * np.maximum(1.0, np.abs(want))


def same_reads(m, where: str, mine: np.ndarray, ref: np.ndarray, what: str) -> None:
    """Refuse a block whose weights read a residual dim the program's do not (mine, ref: [d, units]): past the
    codes the program's reads, the analysis would enumerate every combination of the new dims' codes."""
    from hardwire.certify.model import BOS, Refused
    extra = (mine != 0) & (ref == 0)
    extra[BOS] = False  # BOS's row only acts at BOS, whose residual is compared itself
    if extra.any():
        dim, unit = (int(v) for v in np.argwhere(extra)[0])
        who = what if mine.shape[1] == 1 else f"{what} {unit}"
        raise Refused(where, f"{who} reads {m.labels[dim]} (weight {mine[dim, unit]:.3g}), which program "
                             f"{m.program}'s does not read")


def deviations(m) -> None:
    """Fill m.dev block by block, in the order the model computes; raise Refused at the first block too far."""
    from hardwire.certify.model import Refused
    m.dev["embed"] = embed_deviation(m)
    loop = m.config.get("loop")
    if loop and not np.array_equal(m.bos[loop["body_layers"]], m.ref.bos[loop["body_layers"]]):
        raise Refused("loop body", f"BOS's residual after a pass is not program {m.program}'s, and the next pass "
                                   "starts from it")
    for i in range(m.config["n_layers"]):
        if m.w(f"layers.{i}.attn.W_Q") is not None:
            for h in range(m.w(f"layers.{i}.attn.W_Q").shape[0]):
                for n in "QKV":  # the rows a head reads (any of its dims), as one column
                    same_reads(m, f"layer {i} head {h}", np.abs(m.w(f"layers.{i}.attn.W_{n}")[h]).sum(1, keepdims=True),
                               np.abs(m.ref.w(f"layers.{i}.attn.W_{n}")[h]).sum(1, keepdims=True), f"W_{n}")
                score_path(m, i, h)
                dev = value_path(m, i, h)
                if dev is not None:
                    m.dev[("head", i, h)] = dev
        if m.w(f"layers.{i}.mlp.W_in") is not None:
            same_reads(m, f"layer {i} MLP", m.w(f"layers.{i}.mlp.W_in"), m.ref.w(f"layers.{i}.mlp.W_in"), "neuron")
            dev = mlp_deviation(m, i)
            if dev is not None:
                m.dev[("mlp", i)] = dev
        for name in (f"layers.{i}.norm.W_in", f"layers.{i}.norm.W_out"):
            a, b = m.w(name), m.ref.w(name)
            if a is not None and not np.array_equal(a, b):
                at = np.argwhere(a != b)[0]
                raise Refused(f"layer {i} norm", f"{name} holds {a[tuple(at)]:.6g} at {at.tolist()} where program "
                                                 f"{m.program}'s has {b[tuple(at)]:.6g} (a norm is certified only "
                                                 "as compiled)")


def embed_deviation(m) -> np.ndarray:
    """Per dim, how far a non-BOS position's embedding can be from the program's (BOS's own residual is
    compared at every head, see score_path and value_path); a row further than DEV_LIMIT is refused."""
    from hardwire.certify.model import Refused
    out = np.zeros(m.d)
    vocab = m.config["vocab"]
    for name in ("embed.tokens", "embed.positions", "embed.bits"):
        a, b = m.w(name), m.ref.w(name)
        if a is None:
            continue
        diff = np.abs(a - b)
        bad = np.argwhere(too_far(diff, b))
        if len(bad):
            r, dim = (int(x) for x in bad[0])
            what = {"embed.tokens": lambda: "BOS" if r == 0 else f"token {json.dumps(vocab[r - 1])}"
                    if not m.config.get("word_vocab") else "BOS",
                    "embed.positions": lambda: "BOS" if r == 0 else f"input position {r - 1}",
                    "embed.bits": lambda: f"bit {r}"}[name]()
            raise Refused(f"{name} row {r} ({what})", f"dim {dim} ({m.labels[dim]}) holds {a[r, dim]:.6g} where "
                                                      f"program {m.program}'s embedding has {b[r, dim]:.6g}")
        if name == "embed.bits":
            out += diff.sum(0)
        elif name == "embed.tokens" and m.w("embed.bits") is None:
            out += diff[1:].max(0, initial=0.0)
        elif name == "embed.positions":
            out += diff[1:].max(0, initial=0.0)
    return out


def head_rows(m, i: int, h: int, names: str) -> np.ndarray:
    """The residual rows that the file's or the reference's W_<names> of one head read."""
    rows = np.zeros(m.d, bool)
    for n in names:
        for t in (m, m.ref):
            rows |= np.abs(t.w(f"layers.{i}.attn.W_{n}")[h]).sum(1) > 0
    return np.nonzero(rows)[0]


def same(m, name: str, h: int) -> bool:
    return np.array_equal(m.w(name)[h], m.ref.w(name)[h])


def levels(s: np.ndarray, bos_col: int) -> np.ndarray:
    """Per row of scores, each key's dense rank among the keys that can be the top (at or above BOS's score:
    BOS is always present), -1 for the others; equal within 1e-9 relative, as Analysis.scan counts levels."""
    order = np.argsort(-s, axis=1, kind="stable")
    srt = np.take_along_axis(s, order, 1)
    tol = 1e-9 * (1 + np.abs(srt[:, 1:]))
    new = np.hstack([np.zeros((len(s), 1), int), (srt[:, :-1] - srt[:, 1:] > tol).astype(int)])
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.cumsum(new, axis=1), 1)
    b = s[:, [bos_col]]
    floor = b - 1e-9 * (1 + np.abs(b))
    return np.where(s >= floor, rank, -1)


def score_path(m, i: int, h: int) -> None:
    """Head h of layer i selects, for every query code and every set of key codes, the keys the program's head
    selects: per query code, the same keys can be the top, in the same order of levels. Refused otherwise."""
    from hardwire.certify.model import PAIR_CAP, Refused
    where = f"layer {i} head {h}"
    bos, rbos = m.bos[i], m.ref.bos[i]
    rq, rk = head_rows(m, i, h, "Q"), head_rows(m, i, h, "K")
    if same(m, f"layers.{i}.attn.W_Q", h) and same(m, f"layers.{i}.attn.W_K", h) and \
            np.array_equal(bos[rk], rbos[rk]) and np.array_equal(bos[rq], rbos[rq]):
        return
    gq, gk = few_codes(m, rq), few_codes(m, rk)
    if gq is None or gk is None or len(gq[0]) * (len(gk[0]) + 1) > PAIR_CAP:
        raise Refused(where, f"its score path (W_Q, W_K) differs from program {m.program}'s, and its codes are too "
                             "many to compare the keys it selects")
    xq = gq[0]
    keys = {}
    for t, b in ((m, bos), (m.ref, rbos)):
        xk = np.vstack([gk[0], b[rk][None]])  # the last key is BOS
        keys[id(t)] = xk @ t.w(f"layers.{i}.attn.W_K")[h][rk]
    step = max(1, CHUNK * 16 // (len(gk[0]) + 1))
    for lo in range(0, len(xq), step):
        x = xq[lo:lo + step]
        got = levels((x @ m.w(f"layers.{i}.attn.W_Q")[h][rq]) @ keys[id(m)].T, -1)
        want = levels((x @ m.ref.w(f"layers.{i}.attn.W_Q")[h][rq]) @ keys[id(m.ref)].T, -1)
        bad = np.argwhere(got != want)
        if len(bad):
            r, k = (int(v) for v in bad[0])
            key = "BOS" if k == len(gk[0]) else describe(m, rk, gk[0][k])
            verb = lambda lv: "cannot be the top" if lv < 0 else f"is at level {lv} from the top"  # noqa: E731
            raise Refused(where, f"its score path (W_Q, W_K) selects other keys than program {m.program}'s: for "
                                 f"the query ({describe(m, rq, x[r])}) the key ({key}) {verb(got[r, k])}, where "
                                 f"in the program's it {verb(want[r, k])}")
    # BOS's own query must still pick BOS alone (Analysis.head_gap checks it on the file's weights)


def describe(m, rows: np.ndarray, code: np.ndarray) -> str:
    """A code over residual rows in words: the one-hot dims that are on, the other dims' values."""
    from hardwire.certify.model import NOT_BOS
    parts = []
    for r, v in zip(rows, code):
        if v == 0 or r == NOT_BOS:
            continue
        g = m.groups[m.owner[r]] if m.owner[r] >= 0 else None
        parts.append(m.labels[r] if g is not None and g.encoding == "onehot" and v == 1 else f"{m.labels[r]}={v:g}")
    return ", ".join(parts[:6]) + (" ..." if len(parts) > 6 else "") or "all zero"


def value_path(m, i: int, h: int) -> np.ndarray | None:
    """Per residual dim, the most head h of layer i's value path (W_V.W_O) can write there beyond what the
    program's writes, for any key's code (BOS's included); None when it is the program's. A hard head copies
    one key's value, or averages tied keys': either way at most this far from the program's. Refused past
    DEV_LIMIT, naming the dim, the value and both numbers."""
    from hardwire.certify.model import Refused
    where = f"layer {i} head {h}"
    bos, rbos = m.bos[i], m.ref.bos[i]
    rv = head_rows(m, i, h, "V")
    if same(m, f"layers.{i}.attn.W_V", h) and same(m, f"layers.{i}.attn.W_O", h) and \
            np.array_equal(bos[rv], rbos[rv]):
        return None
    vo = m.w(f"layers.{i}.attn.W_V")[h][rv] @ m.w(f"layers.{i}.attn.W_O")[h]
    ro = m.ref.w(f"layers.{i}.attn.W_V")[h][rv] @ m.ref.w(f"layers.{i}.attn.W_O")[h]
    got, want = [bos[rv] @ vo], [rbos[rv] @ ro]
    gv = few_codes(m, rv)
    if gv is not None:
        worst = np.zeros(m.d)
        for lo in [-1, *range(0, len(gv[0]), CHUNK)]:  # -1: BOS's value first, then the codes in chunks
            x = gv[0][max(lo, 0):lo + CHUNK] if lo >= 0 else None
            got_a = np.atleast_2d(got[0]) if x is None else x @ vo
            want_a = np.atleast_2d(want[0]) if x is None else x @ ro
            diff = np.abs(got_a - want_a)
            bad = np.argwhere(too_far(diff, want_a))
            if len(bad):
                r, dim = (int(v) for v in bad[0])
                value = "BOS's value" if x is None else f"the value ({describe(m, rv, x[r])})"
                raise Refused(where, f"its value path (W_V·W_O) writes {got_a[r, dim]:.6g} to {m.labels[dim]} for "
                                     f"{value}, where program {m.program}'s writes {want_a[r, dim]:.6g}")
            worst = np.maximum(worst, diff.max(0))
        return worst
    # too many value codes to list: |x (vo - ro)| over every x within the value sets
    xmax = m.xmax_pos[rv]
    bound = np.abs(vo - ro).T @ xmax
    bos_dev = np.abs(got[0] - want[0])
    dev = np.maximum(bound, bos_dev)
    ref_size = np.abs(ro).T @ xmax
    bad = np.nonzero(too_far(dev, ref_size))[0]
    if len(bad):
        dim = int(bad[0])
        raise Refused(where, f"its value path (W_V·W_O) can write up to {dev[dim]:.6g} more or less to "
                             f"{m.labels[dim]} than program {m.program}'s (value codes too many to list)")
    return dev


def mlp_deviation(m, i: int) -> np.ndarray | None:
    """Per residual dim, the most layer i's MLP can write there beyond what the program's writes, over every
    combination of the codes read by the units that differ (per group written, like Analysis.validity), or a
    bound from the weights where those are too many; None when the MLP is the program's. Refused past
    DEV_LIMIT, naming the neurons and the input."""
    from hardwire.certify.model import BOS, NOT_BOS, Refused
    w_in, w_out = m.w(f"layers.{i}.mlp.W_in"), m.w(f"layers.{i}.mlp.W_out")
    r_in, r_out = m.ref.w(f"layers.{i}.mlp.W_in"), m.ref.w(f"layers.{i}.mlp.W_out")
    changed = np.nonzero(np.any(w_in != r_in, axis=0) | np.any(w_out != r_out, axis=1))[0]
    if len(changed) == 0:
        return None
    out = np.zeros(m.d)
    targets = [list(g.dims) for g in m.groups] + [[BOS], [NOT_BOS]]
    for dims in targets:
        us = changed[np.abs(w_out[changed][:, dims]).sum(1) + np.abs(r_out[changed][:, dims]).sum(1) > 0]
        if len(us) == 0:
            continue
        rows = np.nonzero(np.abs(w_in[:, us]).sum(1) + np.abs(r_in[:, us]).sum(1))[0]
        rows = np.union1d(rows[rows != BOS], [NOT_BOS])  # at a non-BOS position bos is 0, not_bos 1
        got = few_codes(m, rows)
        if got is None:  # |relu(a') W'_out - relu(a) W_out| <= |a' - a| |W'_out| + relu(a) |W'_out - W_out|
            da = np.abs(w_in[rows][:, us] - r_in[rows][:, us]).T @ m.xmax_pos[rows]
            amax = np.abs(r_in[rows][:, us]).T @ m.xmax_pos[rows]
            dev = da @ np.abs(w_out[us][:, dims]) + amax @ np.abs(w_out[us][:, dims] - r_out[us][:, dims])
            size = amax @ np.abs(r_out[us][:, dims])
            bad = np.nonzero(too_far(dev, size))[0]
            if len(bad):
                raise Refused(f"layer {i} MLP neurons {us[:6].tolist()}",
                              f"differ from program {m.program}'s and can move {m.labels[dims[int(bad[0])]]} by up "
                              f"to {dev[int(bad[0])]:.6g} (their inputs' codes are too many to list)")
            out[dims] = np.maximum(out[dims], dev)
            continue
        worst = np.zeros(len(dims))
        for lo in range(0, len(got[0]), CHUNK):
            x = got[0][lo:lo + CHUNK]
            y = np.maximum(x @ w_in[rows][:, us], 0) @ w_out[us][:, dims]
            yr = np.maximum(x @ r_in[rows][:, us], 0) @ r_out[us][:, dims]
            diff = np.abs(y - yr)
            bad = np.argwhere(too_far(diff, yr))
            if len(bad):
                r, c = (int(v) for v in bad[0])
                on = [int(j) for j in us[(x[r] @ w_in[rows][:, us] > 0) | (x[r] @ r_in[rows][:, us] > 0)]]
                raise Refused(f"layer {i} MLP neurons {(on or us.tolist())[:6]}",
                              f"at input ({describe(m, rows, x[r])}) they write {y[r, c]:.6g} to "
                              f"{m.labels[dims[c]]}, where program {m.program}'s write {yr[r, c]:.6g}")
            worst = np.maximum(worst, diff.max(0))
        out[dims] = np.maximum(out[dims], worst)
    return out


def file_model(path: str, program: str | None, params: list[str] | None):
    """A weight file as certify reads it: (Model with its program's reference weights, Claim, header mismatch
    or None). The program is --program's (compiled with --param) or, without it, the one the file carries."""
    from hardwire.certify.model import load_model
    from hardwire.compiler.check.elaborate import check_source
    from hardwire.compiler.pipeline import compile_program
    m = load_model(path)
    if program is not None:
        from hardwire.cli.args import load_program
        prog, origin = load_program(program, params), program
    else:
        if params:
            raise HardwireError("--param needs --program PROG.hw: the program a weight file carries has its own "
                                "params", path)
        text, ps, _ = embedded_program(m.config, path)
        prog, origin = check_source(text, f"{path} (its program)", ps), "the file's header"
    ref = compile_program(prog)
    rec = program_record(prog.source or "", prog.params)
    claim = Claim(prog.name, rec["sha256"], rec["params"], origin)
    model, mismatch = against(m.t, m.config, m.labels, m.outputs, ref)
    return model or m, claim, mismatch


def against(tensors: dict, config: dict, labels: list, outputs: dict, ref):
    """A weight file's tensors and header against a reference CompiledModel: (Model to certify, None) when
    the header is the one the compiler writes, else (None, where it differs)."""
    from hardwire.certify.model import Model
    mismatch = header_mismatch(config, labels, outputs, ref)
    if mismatch is not None:
        return None, mismatch
    reference = {k: v.astype(np.float32).astype(np.float64) for k, v in ref.tensors.items()}
    return Model(tensors, ref.config, ref.labels, ref.outputs, reference=reference), None
