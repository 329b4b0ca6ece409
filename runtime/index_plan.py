"""The index decoding step exported as flat numpy arrays for the native kernel (runtime/index_native.py).

Every weight block keeps only its non-zero entries, as CSR: a head's value projection per value dim over the
residual, its W_O per value dim over the residual, an MLP's W_in per residual row over its hidden units (so a row
at 0 is skipped whole) and its W_out per unit. Exact: the dropped terms are products with weights that are exactly
0. The code readers, the per-query-code target tables and the output's decoding are the proven rules'
(runtime/index_attention.py), as arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from hardwire.compiler.artifact import from_json
from hardwire.runtime.index_attention import CodeReader, Rule
from hardwire.runtime.model import Transformer, token_key

KINDS = {"position": 0, "latest": 1, "earliest": 2}
NOT_BOS = 1        # the residual row that is 1 at every position but BOS
ENCODINGS = {"onehot": 0, "word": 1, "scalar": 2, "code": 2}   # a code decodes as a scalar: nearest grid point
CONSTANT = 3       # an output that folded away: one value at every position
WORD_TABLE = 20    # most bits of a word output whose token ids are tabled (a model whose vocabulary is not words)


class NativePlan(NamedTuple):
    """One model's decoding step as arrays (ints int64, weights in the model's dtype); `*_ptr` are CSR offsets."""
    tokens: np.ndarray        # [V + 1, D] embed.tokens
    bits: np.ndarray          # [bits, D] embed.bits (`vocab word`), else [0, D]
    positions: np.ndarray     # [max_len + 1, D] embed.positions, or [0, D] where the model has a formula:
    pos_form: np.ndarray      # [2, D] embed.position_form (row q = form[0] + (q - 1) form[1]), else [0, D]
    form_idx: np.ndarray      # the dims where the formula's rows are not 0
    tok_ptr: np.ndarray       # [V + 2] CSR of embed.tokens' rows (a token's row adds only its non-zeros)
    tok_idx: np.ndarray
    tok_w: np.ndarray
    bit_ptr: np.ndarray       # [bits + 1] CSR of embed.bits' rows
    bit_idx: np.ndarray
    bit_w: np.ndarray
    bias: np.ndarray          # [U] each hidden unit's not_bos weight where not_bos is exactly 1 at every decoded
    #                           position (then W_in's not_bos row is not in in_rows: hidden starts at it), else 0
    layer_heads: np.ndarray   # [L + 1]: layer l's heads are layer_heads[l]..layer_heads[l + 1]
    head_cols: np.ndarray     # [H + 1]: head h's value dims (columns) are head_cols[h]..head_cols[h + 1]
    head_kind: np.ndarray     # [H] KINDS
    head_q: np.ndarray        # [H] its query reader
    head_k: np.ndarray        # [H] its key reader (-1: a position head)
    head_tgt: np.ndarray      # [H + 1] offsets into tgt
    tgt: np.ndarray           # per query code, the slot it reads
    head_off: np.ndarray      # [H] its table's offset in a row's state (slots * e values)
    head_have: np.ndarray     # [H] its `have` flags' offset in a row's flags (latest, earliest)
    v_ptr: np.ndarray         # [C + 1] per value column: residual rows and weights of W_V
    v_idx: np.ndarray
    v_w: np.ndarray
    o_ptr: np.ndarray         # [C + 1] per value column: residual rows and weights of W_O
    o_idx: np.ndarray
    o_w: np.ndarray
    row_ptr: np.ndarray       # [2L + 1] offsets into rows: segment 2l the rows layer l's heads write, 2l + 1 its MLP's
    rows: np.ndarray
    layer_units: np.ndarray   # [L + 1]: layer l's hidden units are layer_units[l]..layer_units[l + 1]
    layer_in: np.ndarray      # [L + 1]: layer l's W_in reads in_rows[layer_in[l]..layer_in[l + 1]]
    in_rows: np.ndarray       # the residual rows W_in reads, each with its units (CSC: the residual is sparse,
    in_ptr: np.ndarray        # so a row that holds 0 is skipped whole)
    in_unit: np.ndarray       # the unit, numbered within its layer
    in_w: np.ndarray
    out_ptr: np.ndarray       # [U + 1] per hidden unit: W_out's residual rows and weights
    out_idx: np.ndarray
    out_w: np.ndarray
    rd_parts: np.ndarray      # [R + 1] reader r's parts
    part_enc: np.ndarray      # [P] ENCODINGS
    part_dims: np.ndarray     # [P + 1] offsets into dims
    dims: np.ndarray
    part_n: np.ndarray        # [P] codes
    part_lo: np.ndarray       # [P] a word's least value
    part_grid: np.ndarray     # [P + 1] offsets into grid
    grid: np.ndarray          # scalar grids, in the model's dtype
    out_enc: int              # the generated output: ENCODINGS or CONSTANT
    out_dims: np.ndarray
    out_grid: np.ndarray
    next_id: np.ndarray       # per value index (a word: per word - word_lo), the next token's id
    is_stop: np.ndarray       # same indexing: 1 where the value is a stop token
    word_lo: int              # a word output's least value in those tables
    word_self: bool           # a word output in a word vocabulary: the word is its own id (no tables)
    stop_words: np.ndarray    # ... and these words stop
    state_size: int           # floats of one row's tables
    have_size: int
    max_cols: int             # the most value dims of one head (at least 1: the kernel's scratch)
    max_units: int            # the most hidden units of one layer (at least 1)


def csr(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ptr, idx, w) of the non-zeros of each 1-D block in turn, an index being a position in its block."""
    ptr, idx, w = [0], [], []
    for b in blocks:
        nz = np.nonzero(b)[0]
        idx.append(nz)
        w.append(b[nz])
        ptr.append(ptr[-1] + len(nz))
    dtype = blocks[0].dtype if blocks else np.float32
    return (np.array(ptr, np.int64), np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64),
            np.concatenate(w).astype(dtype) if w else np.zeros(0, dtype))


class Readers:
    """Code readers flattened: their parts, each part's dims, size, least value and grid."""

    def __init__(self, dtype):
        self.dtype, self.parts, self.rd = dtype, [], [0]

    def add(self, reader: CodeReader) -> int:
        self.parts += reader.parts
        self.rd.append(len(self.parts))
        return len(self.rd) - 2

    def arrays(self) -> dict:
        ps = self.parts
        return {"rd_parts": np.array(self.rd, np.int64),
                "part_enc": np.array([ENCODINGS[p.encoding] for p in ps], np.int64),
                "part_dims": np.cumsum([0] + [len(p.dims) for p in ps]).astype(np.int64),
                "dims": np.array([d for p in ps for d in p.dims], np.int64),
                "part_n": np.array([len(p.codes) for p in ps], np.int64),
                "part_lo": np.array([p.lo for p in ps], np.int64),
                "part_grid": np.cumsum([0] + [len(p.grid or []) for p in ps]).astype(np.int64),
                "grid": np.array([g for p in ps for g in (p.grid or [])], self.dtype)}


def why_not(model: Transformer, rules: dict[tuple[int, int], Rule]) -> str | None:
    """Why the native kernel cannot decode this model (None: it can)."""
    cfg = model.config
    w0 = next(iter(model.w.values()))
    if w0.device.type != "cpu":
        return f"the model is on {w0.device.type}; the native kernel runs on the CPU"
    if w0.dtype not in (torch.float32, torch.float64):
        return f"the model is {w0.dtype}; the native kernel runs float32 and float64"
    for i in range(cfg["n_layers"]):
        if model.p(f"layers.{i}.norm.W_in") is not None:
            return f"layer {i} has LayerNorm blocks"
        wq = model.p(f"layers.{i}.attn.W_Q")
        for h in range(0 if wq is None else wq.shape[0]):
            if (i, h) not in rules:
                return f"head {h} of layer {i} is not proven (it runs the softmax over its cache)"
    out = model.outputs[cfg["generate"]["output"]]
    if out["dims"] and out["encoding"] == "word" and not cfg.get("word_vocab") and len(out["dims"]) > WORD_TABLE:
        return f"the output is a {len(out['dims'])}-bit word in a token vocabulary"
    return None


def export(model: Transformer, rules: dict[tuple[int, int], Rule]) -> NativePlan:
    """The plan (cached on the model per dtype); the model must qualify (why_not is None)."""
    cache = model.__dict__.setdefault("_native_plan", {})
    w0 = next(iter(model.w.values()))
    if w0.dtype not in cache:
        cache[w0.dtype] = build(model, rules)
    return cache[w0.dtype]


def build(model: Transformer, rules: dict[tuple[int, int], Rule]) -> NativePlan:
    """Every layer's non-zeros, readers and targets, and the generated output's decoding, as a NativePlan."""
    cfg = model.config
    np_of = lambda name: model.p(name).detach().cpu().numpy()
    tok = np_of("embed.tokens")
    dt, d = tok.dtype, tok.shape[1]
    none = np.zeros((0, d), dt)
    pos = np_of("embed.positions") if model.p("embed.positions") is not None else none
    form = np_of("embed.position_form") if model.p("embed.position_form") is not None else none
    one = not_bos_is_one(model, tok, pos, form)
    bits = np_of("embed.bits") if model.p("embed.bits") is not None else np.zeros((0, d), dt)
    readers = Readers(dt)
    layer_heads, head_cols, kind, hq, hk, head_tgt, tgt, off, have = [0], [0], [], [], [], [0], [], [], []
    v_cols, o_cols, rows = [], [], []
    layer_units, layer_in, in_rows, in_cols, out_units = [0], [0], [], [], []
    state = flags = 0
    bias: list[np.ndarray] = []
    for i in range(cfg["n_layers"]):
        wq = model.p(f"layers.{i}.attn.W_Q")
        written = np.zeros(d, bool)
        for h in range(0 if wq is None else wq.shape[0]):
            rule = rules[(i, h)]
            wv, wo = np_of(f"layers.{i}.attn.W_V")[h], np_of(f"layers.{i}.attn.W_O")[h]   # [D, e], [e, D]
            e = wv.shape[1]
            v_cols += [wv[:, c] for c in range(e)]
            o_cols += [wo[c] for c in range(e)]
            written |= (wo != 0).any(0)
            head_cols.append(head_cols[-1] + e)
            kind.append(KINDS[rule.kind])
            hq.append(readers.add(rule.query))
            hk.append(readers.add(rule.key) if rule.kind != "position" else -1)
            slots = cfg["max_len"] + 1 if rule.kind == "position" else rule.key.size + 1
            t = rule.target.numpy()
            t = np.where(t >= 1, t, 0) if rule.kind == "position" else np.where(t >= 0, t, rule.key.size)
            tgt.append(t.astype(np.int64))
            head_tgt.append(head_tgt[-1] + len(t))
            off.append(state)
            have.append(flags if rule.kind != "position" else -1)
            state += slots * e
            flags += slots if rule.kind != "position" else 0
        layer_heads.append(len(kind))
        rows.append(np.nonzero(written)[0])
        w_in = model.p(f"layers.{i}.mlp.W_in")
        if w_in is not None:
            w_in, w_out = np_of(f"layers.{i}.mlp.W_in"), np_of(f"layers.{i}.mlp.W_out")
            units = np.nonzero((w_in != 0).any(0) & (w_out != 0).any(1))[0]
            read = np.nonzero((w_in[:, units] != 0).any(1))[0]
            # rows in increasing order, bos (0 at a decoded position) first: not_bos's product, 1 * w, is the
            # first term each unit sums, so starting the sum at w is the same sum
            bias += [w_in[NOT_BOS, units] if one else np.zeros(len(units), dt)]
            read = read[read != NOT_BOS] if one else read
            in_rows += read.tolist()
            in_cols += [w_in[r, units] for r in read]
            out_units += [w_out[u] for u in units]
            rows.append(np.nonzero((w_out[units] != 0).any(0))[0])
        else:
            rows.append(np.zeros(0, np.int64))
        layer_units.append(len(out_units))
        layer_in.append(len(in_rows))
    empty = np.zeros(0, dt)
    v_ptr, v_idx, v_w = csr(v_cols or [empty])
    o_ptr, o_idx, o_w = csr(o_cols or [empty])
    in_ptr, in_unit, in_w = csr(in_cols or [empty])
    out_ptr, out_idx, out_w = csr(out_units or [empty])
    return NativePlan(
        tokens=tok, bits=bits, positions=pos, pos_form=form,
        form_idx=np.nonzero((form != 0).any(0))[0].astype(np.int64) if len(form) else np.zeros(0, np.int64),
        **dict(zip(("tok_ptr", "tok_idx", "tok_w"), csr(list(tok)))),
        **dict(zip(("bit_ptr", "bit_idx", "bit_w"), csr(list(bits) or [np.zeros(0, dt)]))),
        bias=np.concatenate(bias).astype(dt) if bias else np.zeros(0, dt),
        layer_heads=np.array(layer_heads, np.int64), head_cols=np.array(head_cols, np.int64),
        head_kind=np.array(kind, np.int64), head_q=np.array(hq, np.int64), head_k=np.array(hk, np.int64),
        head_tgt=np.array(head_tgt, np.int64), tgt=np.concatenate(tgt) if tgt else np.zeros(0, np.int64),
        head_off=np.array(off, np.int64), head_have=np.array(have, np.int64),
        v_ptr=v_ptr, v_idx=v_idx, v_w=v_w, o_ptr=o_ptr, o_idx=o_idx, o_w=o_w,
        row_ptr=np.cumsum([0] + [len(r) for r in rows]).astype(np.int64),
        rows=np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64),
        layer_units=np.array(layer_units, np.int64), layer_in=np.array(layer_in, np.int64),
        in_rows=np.array(in_rows, np.int64), in_ptr=in_ptr, in_unit=in_unit, in_w=in_w,
        out_ptr=out_ptr, out_idx=out_idx, out_w=out_w, **readers.arrays(), **output_arrays(model, dt),
        state_size=state, have_size=flags, max_cols=max([1] + np.diff(head_cols).tolist()),
        max_units=max([1] + np.diff(layer_units).tolist()))


def not_bos_is_one(model: Transformer, tok: np.ndarray, pos: np.ndarray, form: np.ndarray) -> bool:
    """Whether not_bos holds exactly 1 at every decoded position: no token row or bit row writes it (BOS's row
    aside), the position rows hold 1 there, and no layer writes it."""
    bits = model.p("embed.bits")
    rows = (np.all(pos[1:, NOT_BOS] == 1) if len(pos) else form[0, NOT_BOS] == 1 and form[1, NOT_BOS] == 0)
    if not rows or np.any(tok[1:, NOT_BOS] != 0) or (bits is not None and bool((bits[:, NOT_BOS] != 0).any())):
        return False
    for i in range(model.config["n_layers"]):
        for name in (f"layers.{i}.attn.W_O", f"layers.{i}.mlp.W_out", f"layers.{i}.norm.W_out"):
            w = model.p(name)
            if w is not None and bool((w.reshape(-1, w.shape[-1])[:, NOT_BOS] != 0).any()):
                return False
    return True


def output_arrays(model: Transformer, dt) -> dict:
    """The generated output's dims, grid and per-value tables of the next token's id and of the stop tokens
    (decode_step.record's rules: a word vocabulary's id is the word itself, 0 for a value that is no int)."""
    cfg = model.config
    out = model.outputs[cfg["generate"]["output"]]
    stop = {token_key(from_json(v)) for v in cfg["generate"]["stop"]}
    words = bool(cfg.get("word_vocab"))

    def next_of(v) -> int:
        if words:
            return int(v) if isinstance(v, int) and not isinstance(v, bool) else 0
        return model.token_id.get(token_key(v), 0)
    dims = np.array(out["dims"], np.int64)
    base = {"out_dims": dims, "out_grid": np.array(out.get("grid") or [], dt), "word_lo": 0, "word_self": False,
            "stop_words": np.zeros(0, np.int64)}
    if out["dims"] and out["encoding"] == "word":
        n = len(dims)
        if words:   # the word is its own id; only the stop words are listed
            stops = {v for v in (from_json(s) for s in cfg["generate"]["stop"])
                     if isinstance(v, int) and not isinstance(v, bool) and token_key(v) in stop}
            return {**base, "out_enc": ENCODINGS["word"], "next_id": np.zeros(0, np.int64),
                    "is_stop": np.zeros(0, np.int64), "word_self": True,
                    "stop_words": np.array(sorted(stops), np.int64)}
        values = range(-(1 << (n - 1)), 1 << (n - 1))
        return {**base, "out_enc": ENCODINGS["word"], "word_lo": values.start,
                "next_id": np.array([next_of(v) for v in values], np.int64),
                "is_stop": np.array([token_key(v) in stop for v in values], np.int64)}
    if not out["dims"]:
        values = [from_json(out.get("value", out["values"][0] if out["values"] else None))]
        enc = CONSTANT
    else:
        values = [from_json(v) for v in out["values"]]
        enc = ENCODINGS[out["encoding"]]
    return {**base, "out_enc": enc, "next_id": np.array([next_of(v) for v in values], np.int64),
            "is_stop": np.array([token_key(v) in stop for v in values], np.int64)}
