"""The native index decoder: the whole decoding loop of `generate(attention="index")` as one numba kernel.

For a model whose every head is proven (runtime/index_attention.py) and which has no LayerNorm blocks, a step is
an embedding row, per layer each head's value projection, its table write and lookup, W_O, and the MLP, then the
generated output's decoding. The torch index path (runtime/index_decode.py) runs these as a few dozen small tensor
operations, 5 to 15 µs each; here one call decodes every token of every row. The arrays are runtime/index_plan.py's:
the same non-zero weights the dense pass multiplies, summed in another order, in the model's dtype. The prefill and
its tables (index_decode.prefill) are shared with the torch path; this kernel continues from them.
"""
from __future__ import annotations

import time

import numpy as np
from hardwire.compiler.core.errors import HardwireError
from hardwire.runtime.index_plan import CONSTANT, NativePlan

try:
    import numba
except ImportError:   # the `[native]` extra is not installed: the torch index path decodes
    numba = None

CHUNK = 4096   # tokens per row per kernel call when each token is reported (a progress bar, on_token)


def available() -> bool:
    return numba is not None


def require() -> None:
    """Refuse an explicit request for the native kernel when numba is not importable."""
    if numba is None:
        raise HardwireError("the native index kernel needs numba: pip install 'hardwire[native]' "
                            "(or decode with kernel='torch')")


def jit(f):
    """numba.njit(cache=True) when numba is importable (the kernel is compiled once per dtype and cached on disk)."""
    return numba.njit(cache=True)(f) if numba is not None else f


def jit_inline(f):
    """jit, inlined into its callers at numba's IR level. The helpers take the plan, a named tuple of some 60
    arrays, which a call passes by value: as calls, the 20 code reads of a SUBLEQ trace token cost 12 of its 19 µs."""
    return numba.njit(cache=True, inline="always")(f) if numba is not None else f


@jit_inline
def read_code(x, p: NativePlan, r):
    """Reader r's code index off the residual x: per part the one-hot's argmax (the first on a tie), the word's
    two's complement value less its least (clamped), the scalar's nearest grid point (the first on a tie), in
    mixed radix with the last part fastest (CodeReader.index)."""
    out = 0
    for j in range(p.rd_parts[r], p.rd_parts[r + 1]):
        a, b, n = p.part_dims[j], p.part_dims[j + 1], p.part_n[j]
        enc = p.part_enc[j]
        if enc == 0:
            ix = 0
            best = x[p.dims[a]]
            for k in range(1, b - a):
                if x[p.dims[a + k]] > best:
                    best, ix = x[p.dims[a + k]], k
        elif enc == 1:
            v = 0
            for k in range(b - a):
                if x[p.dims[a + k]] > 0.5:
                    v += -(1 << k) if k == b - a - 1 else (1 << k)
            ix = min(max(v - p.part_lo[j], 0), n - 1)
        else:
            ix = nearest(x[p.dims[a]], p.grid, p.part_grid[j], p.part_grid[j + 1])
        out = out * n + ix
    return out


@jit_inline
def nearest(z, grid, a, b):
    """The index (from a) of grid[a:b]'s point nearest z, the first on a tie (argmin of |z - g|)."""
    ix, best = 0, abs(z - grid[a])
    for k in range(1, b - a):
        dist = abs(z - grid[a + k])
        if dist < best:
            ix, best = k, dist
    return ix


@jit_inline
def read_output(x, p: NativePlan):
    """The generated output at residual x: a value index, or a word's value (decode_column, decode_words)."""
    if p.out_enc == CONSTANT:
        return 0
    d = p.out_dims
    if p.out_enc == 0:
        ix, best = 0, x[d[0]]
        for k in range(1, len(d)):
            if x[d[k]] > best:
                ix, best = k, x[d[k]]
        return ix
    if p.out_enc == 1:
        v = 0
        for k in range(len(d)):
            if x[d[k]] > 0.5:
                v += -(1 << k) if k == len(d) - 1 else (1 << k)
        return v
    return nearest(x[d[0]], p.out_grid, 0, len(p.out_grid))


@jit_inline
def stops_and_next(p: NativePlan, v):
    """(whether value v is a stop token, the next token's id) as decode_step.record decides them."""
    if p.word_self:
        for s in p.stop_words:
            if s == v:
                return True, v
        return False, v
    k = v - p.word_lo
    return p.is_stop[k] != 0, p.next_id[k]


@jit_inline
def step(x, p: NativePlan, state, have, pos, delta, vals, hidden):
    """Every layer at one new position, in place on the residual x (the token and position rows added already):
    per head the value, the table write of its key and the read of its query's target, then W_O; then the MLP.
    Every read of a sublayer happens before its writes (they gather in delta); the MLP's hidden units in hidden."""
    n_layers = len(p.layer_heads) - 1
    for layer in range(n_layers):
        for r in range(p.row_ptr[2 * layer], p.row_ptr[2 * layer + 1]):
            delta[p.rows[r]] = 0
        for h in range(p.layer_heads[layer], p.layer_heads[layer + 1]):
            c0, c1 = p.head_cols[h], p.head_cols[h + 1]
            e = c1 - c0
            for c in range(c0, c1):
                acc = delta.dtype.type(0)
                for k in range(p.v_ptr[c], p.v_ptr[c + 1]):
                    acc += x[p.v_idx[k]] * p.v_w[k]
                vals[c - c0] = acc
            kind = p.head_kind[h]
            base = p.head_off[h]
            tgt = p.tgt[p.head_tgt[h] + read_code(x, p, p.head_q[h])]
            slot = pos if kind == 0 else read_code(x, p, p.head_k[h])
            if kind != 2 or have[p.head_have[h] + slot] == 0:   # earliest: only a code's first key is kept
                for c in range(e):
                    state[base + slot * e + c] = vals[c]
                if kind != 0:
                    have[p.head_have[h] + slot] = 1
            for c in range(e):
                o = state[base + tgt * e + c]
                if o != 0:
                    for k in range(p.o_ptr[c0 + c], p.o_ptr[c0 + c + 1]):
                        delta[p.o_idx[k]] += o * p.o_w[k]
        for r in range(p.row_ptr[2 * layer], p.row_ptr[2 * layer + 1]):
            x[p.rows[r]] += delta[p.rows[r]]
        for r in range(p.row_ptr[2 * layer + 1], p.row_ptr[2 * layer + 2]):
            delta[p.rows[r]] = 0
        u0, n_units = p.layer_units[layer], p.layer_units[layer + 1] - p.layer_units[layer]
        for u in range(n_units):   # not_bos's share (index_plan.not_bos_is_one), or 0
            hidden[u] = p.bias[u0 + u]
        for j in range(p.layer_in[layer], p.layer_in[layer + 1]):   # W_in by residual row: a row at 0 adds zeros
            xv = x[p.in_rows[j]]
            if xv != 0:
                for k in range(p.in_ptr[j], p.in_ptr[j + 1]):
                    hidden[p.in_unit[k]] += xv * p.in_w[k]
        for u in range(n_units):
            acc = hidden[u]
            if acc > 0:   # relu: a unit at 0 adds exact zeros
                for k in range(p.out_ptr[u0 + u], p.out_ptr[u0 + u + 1]):
                    delta[p.out_idx[k]] += acc * p.out_w[k]
        for r in range(p.row_ptr[2 * layer + 1], p.row_ptr[2 * layer + 2]):
            x[p.rows[r]] += delta[p.rows[r]]


@jit
def decode(p: NativePlan, x, state, have, pos, n_out, done, out, limit, budget):
    """Decode every row that is not done for at most `budget` more tokens, from its residual x[row] at its last
    position and its next position pos[row]: read the output, record it (out[row, n_out[row]]), stop on a stop
    token or the position limit (decode_step.record), else embed it at pos and run every layer. A row that stops
    on its budget has its next token's residual in x[row] already."""
    d = x.shape[1]
    delta = np.zeros(d, x.dtype)
    vals = np.zeros(p.max_cols, x.dtype)
    hidden = np.zeros(p.max_units, x.dtype)
    qf = np.zeros(1, x.dtype)
    for row in range(x.shape[0]):
        xr, sr, hr = x[row], state[row], have[row]
        for _ in range(budget):
            if done[row]:
                break
            v = read_output(xr, p)
            if pos[row] >= limit:   # a prompt at the position limit generates nothing
                done[row] = True
                break
            out[row, n_out[row]] = v
            n_out[row] += 1
            stop, nxt = stops_and_next(p, v)
            if stop or pos[row] + 1 >= limit:
                done[row] = True
                break
            q = pos[row]
            for k in range(d):
                xr[k] = 0
            if len(p.bits):   # `vocab word`: the token's two's complement bits times embed.bits (their non-zeros)
                for b in range(len(p.bits)):
                    if (nxt >> b) & 1:
                        for k in range(p.bit_ptr[b], p.bit_ptr[b + 1]):
                            xr[p.bit_idx[k]] += p.bit_w[k]
            else:
                for k in range(p.tok_ptr[nxt], p.tok_ptr[nxt + 1]):
                    xr[p.tok_idx[k]] += p.tok_w[k]
            if len(p.positions):
                for k in range(d):
                    xr[k] += p.positions[q, k]
            else:   # the formula, in the model's dtype: the index q - 1 rounded to it once, as Transformer's
                qf[0] = q - 1
                for j in range(len(p.form_idx)):
                    k = p.form_idx[j]
                    xr[k] += p.pos_form[0, k] + qf[0] * p.pos_form[1, k]
            step(xr, p, sr, hr, q, delta, vals, hidden)
            pos[row] += 1


def row_state(plan: NativePlan, pre) -> tuple[np.ndarray, np.ndarray]:
    """Every row's tables after the prompt (index_decode.head_state's), laid out as the plan's heads: [B, S]
    values and [B, F] `have` flags."""
    b = pre.last.shape[0]
    state = np.zeros((b, max(plan.state_size, 1)), pre.last.numpy().dtype)
    have = np.zeros((b, max(plan.have_size, 1)), np.uint8)
    h = 0
    for per_layer in pre.layers:
        for _, _, _, states in per_layer:
            for j in sorted(states):
                st = states[j]
                vals = st.values.reshape(b, -1).numpy()
                state[:, plan.head_off[h]:plan.head_off[h] + vals.shape[1]] = vals
                if st.have is not None:
                    have[:, plan.head_have[h]:plan.head_have[h] + st.have.shape[1]] = st.have.numpy()
                h += 1
    assert h == len(plan.head_kind), "every head of the plan has its table"
    return state, have


def generate_native(model, pre, rules: dict, on_token=None, stamps: dict[int, float] | None = None,
                    arrays: bool = False, long=None) -> list:
    """Decode from the prefill's state with the kernel: every token in one call, or in calls of at most CHUNK
    tokens per row when on_token reports each (a progress bar), and ending at each token of row 0 that stamps
    times (it gets time.perf_counter() as that token is read). Returns the generated values per row (with `arrays`
    and a word output, each row's int64 array). An on_token with `counts` set takes a chunk's count in one call.
    long (one row): resume from long.resume, a DecodeState (its tokens come first in the result), and call
    long.save(DecodeState) when long.due() between calls of at most CHUNK tokens, and at the end."""
    from hardwire.compiler.artifact import from_json
    from hardwire.runtime.index_plan import export
    from hardwire.runtime.loop_state import DecodeState
    plan = export(model, rules)
    state, have = row_state(plan, pre)
    x = pre.last.numpy().copy()
    b = x.shape[0]
    pos = pre.lengths.numpy().astype(np.int64).copy()
    prior, resumed_done = np.zeros(0, np.int64), False
    saving = long is not None and long.save is not None
    if long is not None and isinstance(long.resume, DecodeState):   # the kernel's whole state, as it was saved
        r = long.resume
        x[0], state[0], have[0], pos[0], prior = r.x, r.state, r.have, r.pos, np.asarray(r.tokens, np.int64)
        resumed_done = r.done
    n_out = np.zeros(b, np.int64)
    done = np.zeros(b, np.bool_)
    done[0] = resumed_done
    out = np.zeros((b, max(1, pre.limit - int(pos.min()) + 1)), np.int64)

    def snapshot() -> DecodeState:
        return DecodeState(np.concatenate([prior, out[0, :n_out[0]]]), x[0].copy(), state[0].copy(), have[0].copy(),
                           int(pos[0]), bool(done[0]))
    marks = sorted(k for k in (stamps or {}) if k >= 0)
    reported = 0
    while True:
        budget = out.shape[1] if on_token is None and not saving else 1 if saving and long.every_s == 0 else CHUNK
        while marks and marks[0] < n_out[0]:
            marks.pop(0)
        if marks and not done[0]:
            if marks[0] == n_out[0]:
                stamps[marks.pop(0)] = time.perf_counter()
            if marks:
                budget = min(budget, marks[0] - int(n_out[0]))
        decode(plan, x, state, have, pos, n_out, done, out, pre.limit, budget)
        if on_token is not None:
            if getattr(on_token, "counts", False):
                on_token(int(n_out.max()) - reported)
            else:
                for _ in range(int(n_out.max()) - reported):
                    on_token()
            reported = int(n_out.max())
        if saving and (done.all() or long.due()):
            long.save(snapshot())
        if done.all():
            break
    values = values_of(model, pre.name, from_json)
    if long is not None and len(prior):
        return [np.concatenate([prior, out[0, :n_out[0]]]) if arrays and values is None else
                [*(prior.tolist() if values is None else [values[v] for v in prior]),
                 *(out[0, :n_out[0]].tolist() if values is None else [values[v] for v in out[0, :n_out[0]]])]]
    if values is None and arrays:
        return [out[r, :n_out[r]].copy() for r in range(b)]
    return [out[r, :n_out[r]].tolist() if values is None else [values[v] for v in out[r, :n_out[r]]]
            for r in range(b)]


def values_of(model, name: str, from_json) -> list | None:
    """The generated output's values by index (None: a word, its own value)."""
    out = model.outputs[name]
    if not out["dims"]:
        return [from_json(out.get("value", out["values"][0] if out["values"] else None))]
    if out["encoding"] == "word":
        return None
    return [from_json(v) for v in out["values"]]
