"""The certifier: from a weight file and its value sets, prove the float model decodes exactly, or say where not.

Long: one error analysis carried through every block in order (heads, MLPs, norms, loops); its parts share the
per-dimension bounds and the code enumeration, so splitting them would pass that state through every call.

Every residual subspace (a group) holds one of finitely many ideal codes; the analysis carries, per residual
dimension, a bound on how far the float model can be from the ideal model (hard attention, exact arithmetic
on the stored weights). Heads: the least score gap between distinct levels over all (query, key) codes, the
leak it allows over N keys, and the error it passes on. MLPs: each unit's pre-activation over its inputs'
codes; a pair of units clamping a form re-quantizes when no code comes within the error of its ramp; any
other unit passes its input error on. Compose layer by layer (and pass by pass for loops) and compare with
each output's decode margin. Proofs: proofs/lemmas.md (Lemmas H, M, S, W, N, L, P).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from hardwire.certify.model import (  # noqa: F401 (the certifier's API: importers name them here)
    BOS,
    CAP,
    NOT_BOS,
    PAIR_CAP,
    UNIT_ROUNDOFF,
    Finding,
    Group,
    Model,
    Refused,
    codes_over,
    dyadic,
    from_compiled,
    gamma,
    load_model,
    make_group,
)

LEAK_TOL = math.exp(-29)  # a head is hard when its leak is at most this (the compiler aims at e^-30)
# Snapping (Lemma P): with integer codes and weights on a 1/4 grid, every pre-activation partial sum is on a
# 1/4 grid and every output partial sum on a 1/16 grid; below 2^-4/u in size such a value is a float, and any
# value within half a float step of it (at least u/32 for a nonzero one) rounds onto it
SNAP_GRID = 2.0 ** -5


def real_gcd(values: np.ndarray) -> float | None:
    """The largest g with every value (nearly) an integer multiple of g, trying min|v| / k for k <= 64."""
    v = np.abs(values[np.abs(values) > 0])
    if len(v) == 0:
        return math.inf
    g0 = v.min()
    for k in range(1, 65):
        g = g0 / k
        r = v / g
        if np.all(np.abs(r - np.round(r)) <= 1e-5 * np.maximum(r, 1)):
            return g
    return None


def abs_max_form(model: Model, w: np.ndarray) -> float:
    """An upper bound on sum_d |w_d x_d| at a non-BOS position."""
    return float(np.abs(w) @ model.xmax_pos)


def form_values(model: Model, form: np.ndarray, const: float, got=False):
    """The values of x . form + const over every non-BOS code combination of the groups it reads:
    (array of values, None) by enumeration, or (None, (c, g, lo, hi)) the lattice c + gZ in [lo, hi].
    got: codes_over(model, rows) when the caller has it already (rows: the form's non-zero rows but BOS's)."""
    rows = np.nonzero(form)[0]
    rows = rows[(rows != BOS) & (rows != NOT_BOS)]
    if got is False:
        got = codes_over(model, rows)
    if got is not None:
        return got[0] @ form[rows] + const, None
    lo = hi = const
    for k in sorted({int(model.owner[r]) for r in rows}):
        g = model.groups[k]
        w = np.array([form[d] for d in g.dims])
        if g.codes is not None:
            vals = g.codes @ w
            lo, hi = lo + vals.min(), hi + vals.max()
        else:
            lo, hi = lo + float(np.minimum(w * g.lo, w * g.hi).sum()), hi + float(np.maximum(w * g.lo, w * g.hi).sum())
    if not np.all(model.integer[rows]):
        return None, (const, None, lo, hi)
    return None, (const, real_gcd(form[rows]), lo, hi)


def avoids(values, lattice, a: float, b: float) -> bool:
    """True when no value lies strictly inside (a, b)."""
    if values is not None:
        return not np.any((values > a) & (values < b))
    c, g, lo, hi = lattice
    if hi <= a or lo >= b:
        return True
    if g is None:
        return False
    if g == math.inf:
        return not a < c < b
    k0 = math.floor((max(a, lo) - c) / g)
    points = (c + g * k for k in range(k0, k0 + int((min(b, hi) - max(a, lo)) / g) + 3))
    return not any(a < p < b and lo - 1e-9 <= p <= hi + 1e-9 for p in points)


class Analysis:
    """One pass of the error analysis at N keys (length L = N - 1) in one dtype."""

    def __init__(self, model: Model, length: int, dtype: str):
        self.m, self.n_keys, self.u = model, length + 1, UNIT_ROUNDOFF[dtype]
        self.dtype = dtype
        self.findings: list[Finding] = []
        self.final_error: dict[str, float] = {}  # per output, once the analysis reaches it
        self.cache = model.cache  # what does not depend on the length or the error: gaps, unit values

    # ---- heads -------------------------------------------------------------------------------------------
    def head_gap(self, i: int, h: int) -> dict:
        """What head h of layer i's scores allow, from the (query code, key code) table (or, where that is
        too big, a lattice of the score matrix): the least gap between distinct score levels, the most keys
        that can tie at one level, and the float error of one score (counting its roundings pair by pair)."""
        key = ("gap", i, h)
        if key in self.cache:
            return self.cache[key]
        m = self.m
        wq, wk = m.w(f"layers.{i}.attn.W_Q")[h], m.w(f"layers.{i}.attn.W_K")[h]
        rq, rk = np.nonzero(np.abs(wq).sum(1))[0], np.nonzero(np.abs(wk).sum(1))[0]
        bos = m.bos[i]
        gq, gk = codes_over(m, rq), codes_over(m, rk)
        where = f"layer {i} head {h}"
        positional = any(m.positional[k] for k in (gk[1] if gk is not None else []))
        if gq is not None and gk is not None and len(gq[0]) * (len(gk[0]) + 1) <= PAIR_CAP:
            xq, xk = gq[0], np.vstack([gk[0], bos[rk][None]])  # the last key is BOS
            q, k = xq @ wq[rq], xk @ wk[rk]
            sb = (bos[rq] @ wq[rq]) @ k.T  # BOS's own query: it must pick BOS alone
            if len(sb) > 1 and sb[:-1].max() > sb[-1] - 1e-9 * (1 + abs(sb[-1])):
                raise Refused(where, "BOS does not attend to itself alone (a key scores as high as BOS)")
            gap = float(sb[-1] - sb[:-1].max()) if len(sb) > 1 else math.inf
            ties, score_err = 1, 0.0
            step = max(1, (1 << 20) // len(xk))
            for lo in range(0, len(xq), step):
                g, t, err = self.scan(xq[lo:lo + step], q[lo:lo + step], xk, k, wq[rq], wk[rk], positional)
                gap, ties, score_err = min(gap, g), max(ties, t), max(score_err, err)
            qabs, kabs = np.abs(q), np.abs(k)
            how = f"enumerated {len(xq)} x {len(xk)} codes"
        else:
            if not (np.all(m.integer[rq]) and np.all(m.integer[rk])):
                raise Refused(where, f"too many codes to enumerate ({m.label_of(list(rq))}) and not all "
                                     "integer, so no lattice argument applies")
            mat = wq[rq] @ wk[rk].T
            g = real_gcd(mat.reshape(-1))
            if g is None:
                raise Refused(where, "the score matrix has no common step, so no lattice argument applies")
            resid = np.abs(mat - g * np.round(mat / g)) if g != math.inf else np.zeros_like(mat)
            gap = g - 2 * float(m.xmax_pos[rq] @ resid @ m.xmax[rk])
            qabs, kabs = (np.abs(wq[rq]).T @ m.xmax_pos[rq])[None], (np.abs(wk[rk]).T @ m.xmax[rk])[None]
            score_err = gamma(len(rq) + len(rk) + wq.shape[1], self.u) * float(qabs[0] @ kabs[0])
            ties = self.n_keys
            how = f"lattice: every score is a multiple of {g:.4g}"
        self.cache[key] = {"gap": gap, "ties": ties, "score_err": score_err, "qabs": qabs, "kabs": kabs,
                           "rq": rq, "rk": rk, "how": how}
        return self.cache[key]

    def scan(self, xq, q, xk, k, wq, wk, positional: bool) -> tuple[float, int, float]:
        """Some query codes against every key code: (least gap under a level that can be the top, most keys
        tied at such a level, largest float error of one score)."""
        s = q @ k.T
        # BOS is always present, so a level below BOS's is never the top: only gaps under a level at or
        # above BOS's count, and only ties at such levels
        srt = np.sort(s, axis=1)
        tol = 1e-9 * (1 + np.abs(srt))
        diffs = np.diff(srt, axis=1)
        floor = s[:, -1:] - 1e-9 * (1 + np.abs(s[:, -1:]))
        can_top = srt[:, 1:] >= floor
        real = np.where((diffs > tol[:, 1:]) & can_top, diffs, np.inf)
        gap = float(real.min()) if real.size else math.inf
        ties = self.n_keys
        if positional:  # a key code occurs at one position at most: ties are the codes sharing a level
            new = np.hstack([np.ones((len(srt), 1), bool), diffs > tol[:, 1:]])
            level = np.cumsum(new, axis=1) + np.arange(len(srt))[:, None] * (srt.shape[1] + 1)
            top_ok = srt >= floor
            ties = int(np.bincount(level[top_ok]).max()) if top_ok.any() else 1
        # roundings per (query, key) pair: the terms of each q_e and k_e, the products, the sum over e
        count = lambda x, w: (x != 0).astype(float) @ (w != 0).astype(float)  # noqa: E731
        odd = lambda x, w: ((x != 0) & (np.abs(x) != 1)).astype(float) @ (w != 0).astype(float)  # noqa: E731
        cq = np.maximum(count(xq, wq) - 1, 0) + odd(xq, wq)
        ck = np.maximum(count(xk, wk) - 1, 0) + odd(xk, wk)
        mq, mk = (q != 0).astype(float), (k != 0).astype(float)
        uq, uk = mq * (np.abs(q) != 1), mk * (np.abs(k) != 1)  # a product by +-1 is exact
        rounds = (mq * cq) @ mk.T + mq @ (mk * ck).T + np.maximum(mq @ mk.T - 1, 0) + uq @ uk.T
        mag = (np.abs(xq) @ np.abs(wq)) @ (np.abs(xk) @ np.abs(wk)).T
        err = float((rounds * self.u / np.maximum(1 - rounds * self.u, 1e-9) * mag).max())
        return gap, ties, err

    def head_values(self, i: int, h: int) -> dict:
        """What head h of layer i reads as values: per output dim the range and size of what it can copy."""
        key = ("values", i, h)
        if key in self.cache:
            return self.cache[key]
        m = self.m
        wv, wo = m.w(f"layers.{i}.attn.W_V")[h], m.w(f"layers.{i}.attn.W_O")[h]
        rv = np.nonzero(np.abs(wv).sum(1))[0]
        vo = wv[rv] @ wo  # [|rv|, d]
        gv = codes_over(m, rv)
        if gv is not None:
            xv = np.vstack([gv[0], m.bos[i][rv][None]])
            vals = xv @ vo
            rng, vabs = vals.max(0) - vals.min(0), (np.abs(xv) @ np.abs(wv[rv])).max(0)
            rounds = max(int(((xv != 0).astype(float) @ (wv[rv] != 0).astype(float)).max()) - 1, 0) + \
                int(((xv != 0) & (np.abs(xv) != 1)).any())
        else:
            vabs = np.abs(wv[rv]).T @ m.xmax[rv]
            rng = 2 * (np.abs(vo).T @ m.xmax[rv])
            rounds = len(rv)
        snap = bool(np.all(m.integer[rv]) and dyadic(wv) and dyadic(wo) and np.abs(vo).max(initial=0) < 2 ** 8)
        out = {"snap": snap, "rv": rv, "vo": vo, "rng": rng, "size": np.abs(wo).T @ vabs, "rounds": rounds,
               "out_rounds": int((wo != 0).sum(0).max()), "written": np.nonzero(np.abs(wo).sum(0))[0]}
        self.cache[key] = out
        return out

    def heads(self, i: int, e: np.ndarray) -> np.ndarray:
        """Layer i's heads: the error on every dim they write, given the error e on the residual.

        Per output dim: the leak times the value range; for scalar means, the tie error (tied keys' weights
        off by e^(2 score error)); the value inputs' own error; and the float error of the weighted sum: the
        t tied top terms (gamma_t), their weights' normalisation, and the leaked terms, each of which can
        move a float sum by at most its own size (round to nearest)."""
        m, u, n = self.m, self.u, self.n_keys
        wq = m.w(f"layers.{i}.attn.W_Q")
        out = np.zeros(m.d)
        if wq is None:
            return out
        for h in range(wq.shape[0]):
            where = f"layer {i} head {h}"
            g, v = self.head_gap(i, h), self.head_values(i, h)
            eq = np.abs(m.w(f"layers.{i}.attn.W_Q")[h]).T @ e  # per head dim: the error of q and of k
            ek = np.abs(m.w(f"layers.{i}.attn.W_K")[h]).T @ e
            ds = float((g["qabs"] @ ek).max() + (g["kabs"] @ eq).max() + eq @ ek)
            drift = ds + g["score_err"]
            eff = g["gap"] - 2 * drift
            leak = (n - 1) * math.exp(min(-eff, 700.0))
            ties = min(g["ties"], n)
            stats = {"gap": g["gap"], "score_error": drift, "leak": leak, "keys": n, "ties": ties, "how": g["how"]}
            if leak > LEAK_TOL:
                raise Refused(where, f"not hard: the least score gap is {g['gap']:.4g} ({g['how']}); over {n} "
                                     f"keys it leaks {leak:.3g} > e^-29 = {LEAK_TOL:.3g}"
                                     + ("" if eff > 0 else " (the gap is lost to score error)"))
            tie = math.expm1(2 * drift) * m.scalar_dims
            moved = leak * v["rng"] + np.abs(v["vo"]).T @ e[v["rv"]]
            if v["snap"] and ties == 1 and moved.max(initial=0) < u * SNAP_GRID:
                fl = 4 * (leak + u * moved)  # one top key, weight exp(0) = 1: every rounding snaps back
            else:
                fl = 2 * gamma(ties, u) + gamma(v["rounds"], u) + gamma(v["out_rounds"], u) + 6 * u + 4 * leak
            err = tie * v["rng"] + moved + fl * v["size"]
            written = v["written"]
            out[written] += err[written]
            out += m.dev.get(("head", i, h), 0.0)  # its value path's distance from the program's
            stats["error"] = float(err[written].max()) if len(written) else 0.0
            self.findings.append(Finding(where, f"gap {g['gap']:.4g}, leak {leak:.2e} over {n} keys, "
                                                f"error {stats['error']:.2e} ({g['how']})", stats))
        return out

    # ---- MLPs --------------------------------------------------------------------------------------------
    def units(self, i: int):
        """Per unit: its form's values (or lattice); pairs (upper, lower, step) that clamp; erase pairs."""
        key = ("units", i)
        if key in self.cache:
            return self.cache[key]
        m = self.m
        w_in, w_out = m.w(f"layers.{i}.mlp.W_in"), m.w(f"layers.{i}.mlp.W_out")
        n_units = w_in.shape[1]
        vals = self.unit_values(w_in)
        partner = {}
        by_read: dict = {}
        for j in range(n_units):
            col = w_in[:, j].copy()
            col[NOT_BOS] = 0.0
            by_read.setdefault(col.round(9).tobytes(), []).append(j)
        for js in by_read.values():
            for a, b in itertools.combinations(js, 2):
                if a in partner or b in partner or not np.allclose(w_out[a], -w_out[b], rtol=0, atol=1e-12):
                    continue
                s = w_in[NOT_BOS, a] - w_in[NOT_BOS, b]
                if s != 0:
                    up, lo = (a, b) if s > 0 else (b, a)
                    partner[up], partner[lo] = (up, lo, abs(s)), (up, lo, abs(s))
        erase, signs = set(), {}  # x - ReLU(x) + ReLU(-x) = 0: a dim erased exactly, its error with it
        for j in range(n_units):
            r, wr = np.nonzero(w_in[:, j])[0], np.nonzero(w_out[j])[0]
            if len(r) == 1 and list(wr) == list(r) and abs(w_in[r[0], j]) == 1 and w_out[j, r[0]] == -w_in[r[0], j]:
                erase.add(j)
                signs.setdefault(int(r[0]), set()).add(float(w_in[r[0], j]))
        erased = {dim for dim, sg in signs.items() if sg == {1.0, -1.0}}
        self.validity(i, w_in, w_out, partner)
        snap = np.array([self.m.snaps(w_in[:, j], w_out[j]) for j in range(n_units)], bool)
        self.cache[key] = (vals, partner, erase, erased, snap)
        return self.cache[key]

    def unit_values(self, w_in: np.ndarray) -> list:
        """form_values of each unit's pre-activation (bos, not_bos as its constant), enumerating the codes once per
        set of rows read: the units of one lookup mostly read the same rows, and enumerating dominates the time."""
        forms = w_in.copy()
        consts = forms[NOT_BOS].copy()
        forms[[BOS, NOT_BOS]] = 0.0
        by_reads: dict[bytes, list[int]] = {}
        for j in range(forms.shape[1]):
            by_reads.setdefault(np.nonzero(forms[:, j])[0].tobytes(), []).append(j)
        vals: list = [None] * forms.shape[1]
        for js in by_reads.values():
            rows = np.nonzero(forms[:, js[0]])[0]
            got = codes_over(self.m, rows)
            for j in js:
                vals[j] = form_values(self.m, forms[:, j], consts[j], got)
        return vals

    def validity(self, i: int, w_in: np.ndarray, w_out: np.ndarray, partner: dict) -> None:
        """Exhaustively, every group this MLP writes holds a code afterwards, for every combination of the
        codes it reads (where there are at most CAP); a perturbed weight shows up here, neuron named (the
        units on at the failing input, those outside a clamping pair first)."""
        m = self.m
        checked = skipped = 0
        n_out = m.w(f"layers.{i}.norm.W_out")
        for g in m.groups:
            us = np.nonzero(np.abs(w_out[:, g.dims]).sum(1))[0]
            if len(us) == 0 or (n_out is not None and np.abs(n_out[:, g.dims]).sum() > 0):
                continue  # a norm's output (checked by its own margin)
            erasers = [j for j in us if any(np.array_equal(np.nonzero(w_in[:, j])[0], [d])
                                            and w_out[j, d] == -w_in[d, j] for d in g.dims)]
            reads = set(np.nonzero(np.abs(w_in[:, us]).sum(1))[0].tolist()) - {BOS, NOT_BOS}
            snap = len(erasers) < len(us) and reads <= set(g.dims)  # rewritten from its own dims alone: checked
            if erasers and not snap:
                skipped += 1  # a temporary erased, or a register rewritten by a mux: its cases' guards are
                continue      # exclusive by the program, which value sets alone cannot show
            rows = np.nonzero(np.abs(w_in[:, us]).sum(1))[0]
            rows = np.union1d(rows[rows != BOS], [NOT_BOS])
            reads_g = bool(set(g.dims) & set(rows.tolist()))
            if reads_g:
                rows = np.union1d(rows, g.dims)
            got = codes_over(m, rows)
            if got is None:
                skipped += 1
                continue
            x = got[0]
            hid = np.maximum(x @ w_in[rows][:, us], 0)
            y = hid @ w_out[us][:, g.dims]
            if reads_g:
                y = y + x[:, [list(rows).index(d) for d in g.dims]]
            bad = bad_codes(g, y)
            if len(bad):
                r = int(bad[0])
                names = [m.labels[rows[c]] + ("" if m.groups[m.owner[rows[c]]].encoding == "onehot" else
                                              f"={x[r, c]:g}") for c in range(len(rows))
                         if x[r, c] != 0 and rows[c] != NOT_BOS]
                on = sorted((int(us[k]) for k in np.nonzero(hid[r])[0]), key=lambda j: j in partner)
                raise Refused(f"layer {i} MLP neurons {on[:6]}",  # unpaired units first: a moved one is
                              f"at input ({', '.join(names) or 'all zero'}) it writes {np.round(y[r], 6).tolist()} "
                              f"to {g.name}, which is not one of its codes")
            checked += 1
        self.cache[("valid", i)] = (checked, skipped)

    def patterns(self, i: int, gid: int, w_in: np.ndarray, w_out: np.ndarray):
        """For the units writing group gid: over every code they read, which units can be on (pre-activation
        >= 0) and, per such pattern, the largest sum of their outputs' sizes on each of gid's dims. None when
        the codes are too many. Cached: the same for every length and error (see out_error)."""
        key = ("patterns", i, gid)
        if key in self.cache:
            return self.cache[key]
        m, g = self.m, self.m.groups[gid]
        us = np.nonzero(np.abs(w_out[:, g.dims]).sum(1))[0]
        rows = np.nonzero(np.abs(w_in[:, us]).sum(1))[0]
        rows = rows[(rows != BOS) & (rows != NOT_BOS)]
        got = codes_over(m, rows)
        if got is None:
            self.cache[key] = None
            return None
        wabs = np.abs(w_out[us][:, g.dims])
        w_rows, const = w_in[rows][:, us], w_in[NOT_BOS, us]
        table: dict[bytes, np.ndarray] = {}
        dmin = math.inf  # the closest an off unit comes to 0
        for lo in range(0, len(got[0]), 1 << 12):
            a = got[0][lo:lo + (1 << 12)] @ w_rows + const
            on = a >= -1e-9
            off = np.where(on, -np.inf, a)
            dmin = min(dmin, float(-off.max()) if off.size else math.inf)
            sizes = (np.maximum(a, 0) * on) @ wabs
            packed, inverse = np.unique(np.packbits(on, axis=1), axis=0, return_inverse=True)
            best = np.full((len(packed), len(g.dims)), -np.inf)
            np.maximum.at(best, inverse.reshape(-1), sizes)
            for pk, row in zip(packed, best):
                k = pk.tobytes()
                table[k] = np.maximum(table[k], row) if k in table else row
        pats = np.unpackbits(np.frombuffer(b"".join(table), np.uint8).reshape(len(table), -1), axis=1)[:, :len(us)]
        self.cache[key] = (us, pats.astype(float), np.array(list(table.values())), dmin)
        return self.cache[key]

    def out_error(self, i: int, w_in: np.ndarray, w_out: np.ndarray, passing: list[int], delta: np.ndarray,
                  amax: np.ndarray, snapped: np.ndarray) -> np.ndarray:
        """Per output dim: the input error passed on by units that do not re-quantize (|W_out| times their
        input error, over the units that can be on at one input: for a lookup, the unit that matches and those
        one value away) plus the float error of the output sum (gamma_k over the k terms on there, or nothing
        when every term sits within half a float step of its grid value). Per group written, at its worst input
        where the codes its units read can be listed, else summed over every unit."""
        m, u = self.m, self.u
        grid = u * SNAP_GRID
        result = np.zeros(m.d)
        is_passing = np.zeros(w_in.shape[1], bool)
        is_passing[passing] = True
        for gid, g in enumerate(m.groups):
            wabs = np.abs(w_out[:, g.dims])
            if not wabs.any():
                continue
            pat = self.patterns(i, gid, w_in, w_out)
            if pat is None or delta[pat[0]].max(initial=0) >= pat[3]:
                counts = (wabs != 0).sum(0)
                moved = delta @ wabs
                sizes = np.maximum(amax, 0) @ wabs
                fl = np.where(snapped.all() & (moved < grid) & (sizes + moved < 2 ** -4 / u), 4 * u * moved,
                              counts * u / (1 - counts * u) * sizes)
                result[g.dims] = (wabs * (delta * is_passing)[:, None]).sum(0) + fl
                continue
            us, on, sizes, _ = pat  # an off unit stays off: its pre-activation is further below 0 than delta
            wabs = wabs[us]
            d = delta[us]
            k = on @ (wabs != 0).astype(float)
            moved = (on * d) @ wabs
            on_grid = (on @ (~snapped[us]).astype(float) == 0)[:, None] & (moved < grid) & (sizes + moved < 2 ** -4 / u)
            fl = np.where(on_grid, 4 * u * moved, k * u / (1 - k * u) * (sizes + moved))
            result[g.dims] = ((on * (d * is_passing[us])) @ wabs + fl).max(0)
        return result

    def mlp(self, i: int, e: np.ndarray) -> np.ndarray:
        """Layer i's MLP: the residual's error after it, given the error e before it."""
        m, u = self.m, self.u
        w_in, w_out = m.w(f"layers.{i}.mlp.W_in"), m.w(f"layers.{i}.mlp.W_out")
        where = f"layer {i} MLP"
        vals, partner, erase, erased, snap = self.units(i)
        raw = np.abs(w_in).T @ e
        snapped = snap & (raw < u * SNAP_GRID)  # every rounding lands back on a grid point (Lemma P)
        delta = np.where(snapped, raw * (1 + 8 * u), raw + np.array(
            [gamma(int(np.count_nonzero(w_in[:, j])) + 1, u) * abs_max_form(m, w_in[:, j])
             for j in range(w_in.shape[1])]))
        out = e.copy()
        out[sorted(erased)] = 0.0
        exact_pairs, passing = 0, []
        amax = np.zeros(w_in.shape[1])
        for j, (v, lat) in enumerate(vals):
            amax[j] = (v.max() if v is not None else lat[3]) + delta[j]
            if j in erase:
                continue
            if j in partner:
                up, lo, s = partner[j]
                vu, lu = vals[up]
                if avoids(vu, lu, -delta[up], s + delta[up]):
                    exact_pairs += j == up
                    continue
            if avoids(v, lat, -delta[j], math.inf):
                continue  # never on
            passing.append(j)
        written = np.nonzero(np.abs(w_out).sum(0))[0]
        out[written] += self.out_error(i, w_in, w_out, passing, delta, amax, snapped)[written]
        out += m.dev.get(("mlp", i), 0.0)  # its units' distance from the program's, over every code they read
        # the residual add x + y rounds too, unless both sit within half a float step of a grid value
        out[written] += np.where(m.integer[written] & (out[written] < u * SNAP_GRID), 2 * u * out[written],
                                 u * (m.xmax[written] + out[written]))
        self.findings.append(Finding(where, f"{w_in.shape[1]} units: {exact_pairs} clamping pairs re-quantize, "
                                            f"{len(passing)} pass their input error on",
                                     {"units": w_in.shape[1], "exact_pairs": exact_pairs, "passing": len(passing),
                                      "error": float(out[written].max()) if len(written) else 0.0}))
        return out

    def norms(self, i: int, e: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Layer i's pair LayerNorms: exact at eps 0 while no code's x comes within its error of 0."""
        m, u = self.m, self.u
        n_in, n_out = m.w(f"layers.{i}.norm.W_in"), m.w(f"layers.{i}.norm.W_out")
        if n_in is None:
            return e
        out = e.copy()
        for g, eps in enumerate(m.config["layers"][i]["norm_eps"]):
            form = n_in[:, 2 * g].copy()
            const = form[NOT_BOS]
            form[NOT_BOS] = 0.0
            v, lat = form_values(m, form, const)
            dx = float(np.abs(n_in[:, 2 * g]) @ before) + gamma(m.d, u) * abs_max_form(m, n_in[:, 2 * g])
            if not avoids(v, lat, -dx, dx):
                raise Refused(f"layer {i} norm {g}", f"its input comes within its error {dx:.3g} of 0, "
                                                    "where the sign flips")
            xmin = float(np.abs(v).min()) if v is not None else dx
            soft = 1 - (xmin - dx) / math.sqrt((xmin - dx) ** 2 + eps) if eps > 0 else 0.0
            written = np.nonzero(n_out[2 * g])[0]
            out[written] += soft / 2 + 16 * u
            self.findings.append(Finding(f"layer {i} norm {g}", f"input at least {xmin:.3g} from 0, error {dx:.2e}"
                                         + (f", soft by {soft:.2e} (eps {eps:g})" if eps else ": an exact sign"),
                                         {"margin": xmin, "error": dx, "soft": soft}))
        return out

    # ---- composition -------------------------------------------------------------------------------------
    def layers(self, lo: int, hi: int, e: np.ndarray) -> np.ndarray:
        for i in range(lo, hi):
            e = e + self.heads(i, e)
            before = e
            if self.m.w(f"layers.{i}.mlp.W_in") is not None:
                e = self.mlp(i, before)
            e = self.norms(i, e, before)
        return e


def bad_codes(g: Group, y: np.ndarray) -> np.ndarray:
    """Rows of y (values over g's dims) that are no code of g, within a relative 1e-6 (float32 weights)."""
    tol = 1e-6 * np.maximum(1.0, np.abs(y))
    if g.encoding == "word":
        ok = np.all((np.abs(y) <= tol) | (np.abs(y - 1) <= tol), axis=1)
    elif g.encoding == "onehot":
        near = np.abs(y - np.round(y)) <= tol
        ok = np.all(near, axis=1) & (np.round(y).sum(1) == 1) & np.all(np.round(y) >= 0, axis=1)
    else:
        grid = np.array(g.grid)
        ok = (np.abs(y[:, :1] - grid[None]) <= tol[:, :1]).any(1)
    return np.nonzero(~ok)[0]


def decode_margin(out: dict) -> float:
    """How far an output's dims may move before its decode changes."""
    if out["encoding"] in ("scalar", "code") and out.get("grid") and len(out["grid"]) > 1:
        return float(np.diff(sorted(out["grid"])).min()) / 2
    return 0.5


@dataclass
class Certificate:
    ok: bool
    length: int  # exact for every input up to this length
    dtype: str
    statement: str
    failure: str | None
    findings: list[Finding]
    steps: str | None = None
    output_error: dict = field(default_factory=dict)  # per output: its error bound at the certified length


def embed_error(model: Model, u: float) -> np.ndarray:
    """Per dim, how far a stored embedding value can be from its ideal code: 0 for integers below 1/u,
    else its rounding."""
    e = np.where(model.integer & (model.xmax < 1 / u), 0.0, model.xmax * u)
    for g in model.groups:
        if g.encoding == "scalar":
            grid = np.array(g.grid)
            e[g.dims] = float(np.abs(grid - grid.astype(np.float32).astype(np.float64)).max()) if u > 1e-10 else \
                0.0
    return e


def analyze(model: Model, length: int, dtype: str) -> Analysis:
    """Raise Refused at the first block whose bound fails at `length`; return the analysis otherwise."""
    try:
        return analyze_blocks(model, length, dtype)
    except (OverflowError, FloatingPointError) as err:  # weights near the float range (3e38): no bound
        raise Refused("analysis", f"a bound overflows ({err}): the weights are too large to certify") from None


def analyze_blocks(model: Model, length: int, dtype: str) -> Analysis:
    """analyze, without the overflow guard."""
    a = Analysis(model, length, dtype)
    cfg = model.config
    e = embed_error(model, a.u) + model.dev.get("embed", 0.0)
    loop = cfg.get("loop")
    body = loop["body_layers"] if loop else 0
    if loop:
        for _ in range(12):  # pass after pass until the error bound stops growing (re-quantization)
            e1 = a.layers(0, body, e)
            if np.all(e1 <= e * (1 + 1e-9) + 1e-300):
                break
            e = np.maximum(e, e1)
        else:
            grow = int(np.argmax(e1 - e))
            raise Refused("loop body", f"the error on {model.labels[grow]} still grows after 12 passes: not "
                                       "re-quantized each pass")
        for name, dims in loop["flags"].items():
            if e[dims].max() >= 0.5:
                raise Refused(f"flag {name}", f"its error bound {e[dims].max():.3g} reaches 0.5")
        for name, reg in loop["registers"].items():
            if e[reg["dims"]].max() >= decode_margin(reg):
                raise Refused(f"register {name}", f"its error bound {e[reg['dims']].max():.3g} reaches its "
                                                  "decode margin")
    e = a.layers(body, cfg["n_layers"], e)
    for name, out in model.outputs.items():
        if out["dims"] and e[out["dims"]].max() >= decode_margin(out):
            raise Refused(f"output {name}", f"its error bound {e[out['dims']].max():.3g} reaches its decode "
                                            f"margin {decode_margin(out):.3g}")
    a.final_error = {name: float(e[o["dims"]].max()) if o["dims"] else 0.0 for name, o in model.outputs.items()}
    return a


def certify(model: Model, dtype: str = "float32") -> Certificate:
    """The longest length (up to max_len) at which every bound holds, found by bisection, and why not longer."""
    cfg = model.config
    top = cfg["max_len"]
    lengths = [top] if cfg.get("exact_len") else None
    failure = None
    from hardwire.certify.program import precheck
    pre = precheck(model)  # value sets, magnitudes and every block's distance from the program's weights
    if pre is not None:
        return Certificate(False, 0, dtype, f"not certified in {dtype}: {pre}", pre, [])
    try:
        a = analyze(model, top, dtype)
        best = top
    except Refused as r:
        failure = str(r)
        if lengths is not None:
            best, a = 0, None
        else:
            lo, hi, a = 0, top, None  # lo passes (0: none), hi fails
            while hi - lo > 1:
                mid = (lo + hi) // 2
                try:
                    a, lo = analyze(model, mid, dtype), mid
                except Refused as r2:
                    hi, failure = mid, str(r2)
            best = lo
    kind = "generated sequence" if cfg.get("generate") else "input"
    if best == 0:
        statement = f"not certified in {dtype}: {failure}"
        return Certificate(False, 0, dtype, statement, failure, [])
    steps = "for any number of loop passes (every pass re-quantizes)" if cfg.get("loop") else None
    statement = f"exact for every {kind} of length up to {best} in {dtype}" + (f", {steps}" if steps else "")
    if best < top:
        statement += f"; at length {best + 1} the argument fails: {failure}"
    return Certificate(best == top, best, dtype, statement, failure if best < top else None, a.findings, steps,
                       a.final_error)


