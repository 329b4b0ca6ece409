"""Index attention: per head of a causal model, a selection rule derived from the weights and proven exhaustively.

Long: the code readers, the score tables (code part, position part) and the two rules they prove are one proof.

A head's key at a non-BOS position j splits into a code part (the value-set groups not tied to the position) and
a position part (position-only groups, one distinct code per position, with not_bos = 1). The score is linear in
the key, so a query code c scores a key of code k at j as a(c, k) + p(c, j), and BOS as b(c). Over every query
code (the value sets of config["groups"], as `hardwire certify` enumerates them), every key code (maximized
coordinate by coordinate, a word bit by bit: `code_scores`) and every position 1..max_len, in float64 on the
stored weights, this module proves one of two rules per head:

- `latest` (`earliest`): one key code f(c) (or none) beats BOS at every position, every other code loses to BOS at
  every position, and p(c, .) rises (falls) by at least the margin per position: the winner is the latest
  (earliest) key of code f(c), else BOS. Evaluated with a table code -> value of the latest (first) key of that code.
- `position`: no code part, and one position f(c) (or none) beats BOS while every other position loses to it: the
  winner is the key at f(c) when it is present (f(c) <= the query's position), else BOS.

A head is proven when the least margin, less twice a float bound on one score's rounding, leaks at most e^-29
over max_len keys (the certificate's LEAK_TOL). proofs/index_attention.md gives the argument.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from hardwire.compiler.artifact import grid_of
from hardwire.runtime.model import Transformer, layer_norm_pairs

LEAK_TOL = math.exp(-29)   # as hardwire/certify/certifier.py: a head is hard when its leak is at most this
CODE_CAP = 1 << 20         # most codes enumerated on one side of a head: the trace-mode SUBLEQ's memory queries name
#                            mem + 1 addresses (up to 1,048,575 words); 2^20 rows of a 21-bit query in float64 are
#                            about 180 MB (2^18 before: a 17-bit word, 65,535 tokens of BB(5); 2^16 before that)
PAIR_CAP = 1 << 33         # most (query code, position) scores computed for one head (a time cap: minutes)
ROW_BYTES = 1 << 28        # the position part is scored in chunks of query rows of about this many bytes
TABLE_CAP = 1 << 20        # most key codes a latest/earliest table holds (per row of the batch)
BOS, NOT_BOS = 0, 1
UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53}


@dataclass
class Part:
    """One value-set group as a reader sees it: its residual dims, encoding, and how to index its codes."""
    dims: list[int]
    encoding: str
    codes: np.ndarray          # [n, len(dims)] ideal codes, in the order of their index
    lo: int = 0                # a word's least value (index = value - lo)
    grid: list[float] | None = None


@dataclass
class CodeReader:
    """Reads a code index off residual rows: per group the one-hot's argmax, the word's value, the scalar's nearest
    grid point, combined in mixed radix (the last group fastest), as `enumerate_codes` orders them."""
    parts: list[Part]

    @property
    def size(self) -> int:
        return int(np.prod([len(p.codes) for p in self.parts])) if self.parts else 1

    def dims(self) -> list[int]:
        return [d for p in self.parts for d in p.dims]

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """x: [len(self.dims()), N] residual rows -> [N] code indices."""
        out = None
        at = 0
        for p, c in zip(self.parts, self.constants(x)):
            z = x[at:at + len(p.dims)]
            at += len(p.dims)
            if p.encoding == "onehot":
                ix = z.argmax(0)
            elif p.encoding == "word":   # c: the bits' two's complement weights
                ix = ((z > 0.5).long() * c[:, None]).sum(0).sub_(p.lo).clamp_(0, len(p.codes) - 1)
            else:                        # c: the grid
                ix = (z[0, :, None] - c[None]).abs().argmin(-1)
            out = ix if out is None else out * len(p.codes) + ix
        return torch.zeros(x.shape[1], dtype=torch.long, device=x.device) if out is None else out

    def constants(self, x: torch.Tensor) -> list:
        """Per part, the tensor its decoding needs on x's device and dtype (made once)."""
        cache = self.__dict__.setdefault("_constants", {})
        key = (x.device, x.dtype)
        if key not in cache:
            cache[key] = [torch.tensor([1 << k for k in range(len(p.dims) - 1)] + [-(1 << (len(p.dims) - 1))],
                                       device=x.device) if p.encoding == "word" else
                          torch.tensor(p.grid, dtype=x.dtype, device=x.device)
                          if p.encoding in ("scalar", "code") else None
                          for p in self.parts]
        return cache[key]


@dataclass
class Rule:
    """A proven head: which rule, how its codes are read, and each query code's target (-1: BOS)."""
    layer: int
    head: int
    kind: str                  # "latest", "earliest" or "position"
    query: CodeReader
    key: CodeReader            # latest, earliest: the key's code; position: no parts
    target: torch.Tensor       # [query codes] long: a key code (latest) or a position (position); -1 for BOS
    margin: float              # least score margin over every query code, key code and position
    score_error: float         # bound on one score's float rounding in the runtime dtype
    leak: float                # max_len * exp(-(margin - 2 score_error))


@dataclass
class Refusal:
    layer: int
    head: int
    why: str


def part_of(g: dict) -> Part | None:
    """A group's Part, or None when its codes are too many to list (a word without a small range)."""
    dims, enc = list(g["dims"]), g["encoding"]
    if enc == "onehot":
        return Part(dims, enc, np.eye(len(dims)))
    if enc in ("scalar", "code"):
        if "integers" in g and g["integers"][1] - g["integers"][0] >= CODE_CAP:
            return None
        grid = grid_of(g)
        return Part(dims, enc, np.array(grid, dtype=np.float64)[:, None], grid=list(grid))
    bits = g["bits"]
    lo, hi = g.get("range", [-(1 << (bits - 1)), (1 << (bits - 1)) - 1])
    if hi - lo >= CODE_CAP:
        return None
    v = np.arange(lo, hi + 1)
    return Part(dims, enc, ((v[:, None] >> np.arange(bits)) & 1).astype(np.float64), lo=int(lo))


def enumerate_codes(reader: CodeReader, rows: np.ndarray) -> np.ndarray:
    """Every code combination of the reader's groups, as vectors over `rows` at a non-BOS position (not_bos 1)."""
    pos = {int(r): j for j, r in enumerate(rows)}
    out = np.zeros((reader.size, len(rows)))
    if NOT_BOS in pos:
        out[:, pos[NOT_BOS]] = 1.0
    sizes = [len(p.codes) for p in reader.parts]
    idx = np.indices(sizes).reshape(len(sizes), -1) if sizes else np.zeros((0, 1), int)
    for p, ix in zip(reader.parts, idx):
        cols = [j for j, d in enumerate(p.dims) if d in pos]
        out[:, [pos[p.dims[j]] for j in cols]] = p.codes[ix][:, cols]
    return out


class Weights:
    """A model's weights as float64 numpy, its groups, which are positional, and BOS's residual per layer."""

    def __init__(self, model: Transformer):
        self.cfg = model.config
        self.t = {k.replace("__", "."): v.detach().to("cpu", torch.float64).numpy() for k, v in model.w.items()}
        self.d = self.cfg["d_model"]
        self.groups = self.cfg.get("groups") or []
        self.owner = np.full(self.d, -1)
        for k, g in enumerate(self.groups):
            self.owner[g["dims"]] = k
        tok, bits = self.t["embed.tokens"][1:], self.t.get("embed.bits")
        self.form = self.t.get("embed.position_form")   # [2, D]: position j's row is form[0] + (j - 1) form[1]
        if self.form is not None:   # a formula's rows are distinct where its per-index row is not 0
            distinct = [bool(self.form[1, g["dims"]].any()) for g in self.groups]
        else:
            pos = self.t["embed.positions"][1:]
            distinct = [len({r.tobytes() for r in pos[:, g["dims"]]}) == len(pos) for g in self.groups]
        self.positional = [not tok[:, g["dims"]].any() and (bits is None or not bits[:, g["dims"]].any()) and dist
                           for g, dist in zip(self.groups, distinct)]
        self.bos = self.bos_residuals()

    def written_before(self, i: int) -> np.ndarray:
        """[D] bool: the rows some layer before i writes."""
        w = np.zeros(self.d, bool)
        for j in range(i):
            for name in (f"layers.{j}.attn.W_O", f"layers.{j}.mlp.W_out", f"layers.{j}.norm.W_out"):
                if name in self.t:
                    m = self.t[name]
                    w |= (m.reshape(-1, self.d) != 0).any(0)
        return w

    def bos_residuals(self) -> list[np.ndarray]:
        """BOS's residual before each layer: alone in its sequence, every head's softmax is 1 on itself."""
        x = self.t["embed.tokens"][0] + (0 if self.form is not None else self.t["embed.positions"][0])
        out = [x]
        for i in range(self.cfg["n_layers"]):
            wq = self.t.get(f"layers.{i}.attn.W_Q")
            if wq is not None:
                for h in range(wq.shape[0]):
                    x = x + (x @ self.t[f"layers.{i}.attn.W_V"][h]) @ self.t[f"layers.{i}.attn.W_O"][h]
            y = x.copy()
            if f"layers.{i}.mlp.W_in" in self.t:
                y = y + np.maximum(x @ self.t[f"layers.{i}.mlp.W_in"], 0) @ self.t[f"layers.{i}.mlp.W_out"]
            if f"layers.{i}.norm.W_in" in self.t:
                eps = torch.tensor(self.cfg["layers"][i]["norm_eps"], dtype=torch.float64)
                v = layer_norm_pairs(torch.from_numpy(x @ self.t[f"layers.{i}.norm.W_in"]), eps).numpy()
                y = y + v @ self.t[f"layers.{i}.norm.W_out"]
            x = y
            out.append(x)
        return out


def reader_for(w: Weights, rows: np.ndarray, which) -> CodeReader | str:
    """The reader of the groups owning `rows` that `which(group index)` keeps, or why there is none."""
    gids = sorted({int(w.owner[r]) for r in rows if w.owner[r] >= 0 and which(int(w.owner[r]))})
    parts = []
    for k in gids:
        p = part_of(w.groups[k])
        if p is None:
            return f"{w.groups[k]['name']} has too many codes to enumerate"
        parts.append(p)
    reader = CodeReader(parts)
    return reader if reader.size <= CODE_CAP else "too many code combinations to enumerate"


def error_bound(xq: np.ndarray, wq: np.ndarray, k_abs: np.ndarray, k_terms: int, u: float) -> np.ndarray:
    """Per query code, a bound on one score's rounding: gamma(n_q + n_k + 1 + m) sum_e |x_q||W_Q|_e max|x_k||W_K|_e,
    the nested dot products' bound (n_q, n_k: the most non-zero terms of one q_e, k_e; m: the q_e with a non-zero
    term). A q_e whose every term is an exact 0 is an exact 0, and so are its product and its share of the sum."""
    per_e = (xq != 0).astype(float) @ (wq != 0).astype(float)                  # [nq, e]: non-zero terms of q_e
    n = per_e.max(1) + k_terms + 1 + (per_e > 0).sum(1)
    gamma = n * u / (1 - n * u)
    return gamma * ((np.abs(xq) @ np.abs(wq)) @ k_abs)


def coordinates(reader: CodeReader, rows: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The key code as independent coordinates, each (group number, columns in rows, option vectors over them): a
    one-hot or scalar group is one coordinate (its codes), a word group one per bit ({0, 1}: every bit pattern, a
    superset of its range). A score linear in the key is a sum of one term per coordinate."""
    pos = {int(r): j for j, r in enumerate(rows)}
    out = []
    for g, part in enumerate(reader.parts):
        cols = np.array([pos[d] for d in part.dims if d in pos], dtype=int)
        have = [j for j, d in enumerate(part.dims) if d in pos]
        if part.encoding == "word":
            out += [(g, np.array([pos[part.dims[j]]]), np.array([[0.0], [1.0]])) for j in have]
        else:
            out.append((g, cols, part.codes[:, have]))
    return out


@dataclass
class CodeScores:
    """Per query code, the key-code part of the score a(c, k) over every key code, as the best code (`best`, its
    reader index, -1 where its bits fall outside a word's range or it is not unique), its score `top`, and
    `second`: the best score of any other code (-inf if there is none)."""
    best: np.ndarray
    top: np.ndarray
    second: np.ndarray
    k_abs: np.ndarray    # per head dim, the most |x_k| |W_K| any key code's part contributes
    k_terms: int         # the most non-zero terms any key code puts into one k_e


def code_scores(reader: CodeReader, q: np.ndarray, wk: np.ndarray, rows: np.ndarray) -> CodeScores:
    """a(c, k) = sum over coordinates of q . (option W_K): maximized coordinate by coordinate, so the best code is
    unique when every coordinate's best option is, and the runner-up differs in the coordinate of least gap."""
    nq = len(q)
    top, gap = np.zeros(nq), np.full(nq, np.inf)
    picks: dict[int, list] = {}
    k_abs, k_terms = np.zeros(wk.shape[1]), 0
    for g, cols, opts in coordinates(reader, rows):
        contrib = opts @ wk[rows[cols]]                                        # [options, e]
        t = q @ contrib.T                                                      # [nq, options]
        order = np.sort(t, 1)
        top += order[:, -1]
        tie = order.shape[1] > 1
        gap = np.minimum(gap, order[:, -1] - order[:, -2]) if tie else gap
        picks.setdefault(g, []).append(t.argmax(1))
        k_abs += np.abs(contrib).max(0)
        k_terms += int((contrib != 0).sum(1).max(initial=0))
    best = np.zeros(nq, dtype=np.int64)
    ok = gap > 0
    for g, part in enumerate(reader.parts):
        got = picks.get(g)
        if part.encoding == "word":   # the bits read, as a value; bits the head does not read tie (gap 0)
            n = len(part.dims)
            value = sum((got[j] << j) for j in range(len(got))) if got else np.zeros(nq, dtype=np.int64)
            value = np.where(value >= 1 << (n - 1), value - (1 << n), value) if got and len(got) == n else value
            ix = value - part.lo
            ok &= (ix >= 0) & (ix < len(part.codes)) & (got is not None and len(got) == n)
        else:
            ix = got[0] if got else np.zeros(nq, dtype=np.int64)
        best = best * len(part.codes) + np.clip(ix, 0, len(part.codes) - 1)
    second = np.where(np.isinf(gap), -np.inf, top - np.where(np.isinf(gap), 0, gap))
    return CodeScores(np.where(ok, best, -1), top, second, k_abs, k_terms)


def derive_head(w: Weights, i: int, h: int, u: float) -> Rule | Refusal:
    """Head h of layer i's rule, proven over every query code, key code and position, or why not."""
    wq, wk = w.t[f"layers.{i}.attn.W_Q"][h], w.t[f"layers.{i}.attn.W_K"][h]
    rq, rk = np.nonzero(np.abs(wq).sum(1))[0], np.nonzero(np.abs(wk).sum(1))[0]
    n_pos = w.cfg["max_len"]
    if any(w.owner[r] < 0 and r not in (BOS, NOT_BOS) for r in np.concatenate([rq, rk])):
        return Refusal(i, h, "reads a row outside every value set")
    q_reader = reader_for(w, rq, lambda k: True)
    if isinstance(q_reader, str):
        return Refusal(i, h, q_reader)
    k_reader = CodeReader([part_of(w.groups[k]) for k in sorted({int(w.owner[r]) for r in rk if w.owner[r] >= 0
                                                                  and not w.positional[int(w.owner[r])]})])
    if any(p is None for p in k_reader.parts):
        return Refusal(i, h, "a key group has too many codes to enumerate")
    if k_reader.size > TABLE_CAP:
        return Refusal(i, h, f"a table over its {k_reader.size} key codes would be too large")
    pos_rows = np.array([r for r in rk if r in (BOS, NOT_BOS) or w.positional[int(w.owner[r])]], dtype=int)
    if w.written_before(i)[pos_rows[pos_rows > NOT_BOS]].any():
        return Refusal(i, h, "a layer before it writes a positional row its keys read")
    code_rows = np.array([r for r in rk if r not in set(pos_rows.tolist())], dtype=int)
    xq = enumerate_codes(q_reader, rq)                                        # [nq, |rq|]
    if w.form is not None:   # affine in the position: positions 1 and L bound every |x| (and stand in for k_abs)
        xp = w.form[0][pos_rows] + np.array([[0.0], [n_pos - 1.0]]) * w.form[1][pos_rows]      # [2, |pos rows|]
    else:
        xp = w.t["embed.positions"][1:n_pos + 1][:, pos_rows].copy()          # [L, |pos rows|]
    xp[:, pos_rows == BOS], xp[:, pos_rows == NOT_BOS] = 0.0, 1.0
    xb = w.bos[i][rk]
    q = xq @ wq[rq]                                                           # [nq, e]
    # not_bos is 1 at every key j >= 1: its share of pi(c, j) is a constant per query code, cq, taken out of the
    # position part (and off BOS's score b, which is the same comparison), so that the position part depends on q
    # only through the columns the rows that vary with j reach. A word select's bit columns read not_bos, so
    # without this every query code of a latest head over a word would be its own row.
    varying = (pos_rows != BOS) & (pos_rows != NOT_BOS)
    cq = q @ wk[NOT_BOS] if NOT_BOS in set(pos_rows.tolist()) else np.zeros(len(q))
    if w.form is not None:   # kv(j) = kv0 + (j - 1) kv1: the position part is affine in j
        kv = w.form[:, pos_rows[varying]] @ wk[pos_rows[varying]]             # [2, e]
    else:
        kv = xp[:, varying] @ wk[pos_rows[varying]]                           # [L, e]
    cols = np.nonzero(np.abs(kv).sum(0))[0]
    # the position part depends on q only through the columns kv has: score each distinct row of them once
    rows_u, inv = np.unique(q[:, cols], axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    if w.form is not None:
        pu = affine_part(rows_u @ kv[0, cols], rows_u @ kv[1, cols], n_pos)
    elif len(rows_u) * n_pos > PAIR_CAP:
        return Refusal(i, h, "too many (query, position) scores to enumerate")
    else:
        pu = position_part(rows_u, kv[:, cols])
    a = code_scores(k_reader, q, wk, code_rows)
    b = q @ (xb @ wk[rk]) - cq                                                # [nq]: BOS against pi's constant
    k_abs = np.maximum(a.k_abs + (np.abs(xp) @ np.abs(wk[pos_rows])).max(0, initial=0), np.abs(xb) @ np.abs(wk[rk]))
    k_terms = int(max(a.k_terms + ((xp != 0).astype(float) @ (wk[pos_rows] != 0)).max(initial=0),
                      ((xb != 0).astype(float) @ (wk[rk] != 0)).max(initial=0)))
    err = float(error_bound(xq, wq[rq], k_abs, k_terms, u).max(initial=0))
    rule = latest_rule(a, pu, inv, b)
    if rule is None and not k_reader.parts:
        rule = position_rule(pu, inv, b)
    if rule is None:
        return Refusal(i, h, "no rule fits its scores (not `latest by code` nor `the key at a position`)")
    target, margin, kind = rule
    leak = n_pos * math.exp(min(-(margin - 2 * err), 700.0))
    if leak > LEAK_TOL:
        return Refusal(i, h, f"margin {margin:.4g} less twice the score error {err:.3g} leaks {leak:.3g} over "
                             f"{n_pos} keys, more than e^-29")
    return Rule(i, h, kind, q_reader, k_reader if kind != "position" else CodeReader([]),
                torch.tensor(target, dtype=torch.long), margin, err, leak)


@dataclass
class PositionPart:
    """Per distinct query row u, its position part p(u, j) over j = 1..L reduced: the least and greatest value, the
    least and greatest step p(u, j + 1) - p(u, j), the first argmax, its score, and the best score of any other
    position (-inf if none). Scored in chunks of rows, so memory is O(rows), not O(rows x positions)."""
    pmin: np.ndarray
    pmax: np.ndarray
    dmin: np.ndarray
    dmax: np.ndarray
    top: np.ndarray
    top_s: np.ndarray
    second: np.ndarray


def position_part(rows_u: np.ndarray, kp: np.ndarray) -> PositionPart:
    """The position part of every distinct query row (rows_u [U, c]) against the positions' keys (kp [L, c])."""
    n_u, n_pos = len(rows_u), len(kp)
    out = PositionPart(*(np.empty(n_u) for _ in range(4)), np.empty(n_u, np.int64), np.empty(n_u), np.empty(n_u))
    step = max(1, ROW_BYTES // (8 * max(n_pos, 1)))
    for a in range(0, n_u, step):
        pu = rows_u[a:a + step] @ kp.T                                        # [chunk, L]
        at = slice(a, a + len(pu))
        out.pmin[at], out.pmax[at] = pu.min(1, initial=np.inf), pu.max(1, initial=-np.inf)
        diff = np.diff(pu, axis=1)
        out.dmin[at], out.dmax[at] = diff.min(1, initial=np.inf), diff.max(1, initial=-np.inf)
        del diff
        top = pu.argmax(1)
        out.top[at], out.top_s[at] = top, pu[np.arange(len(pu)), top]
        pu[np.arange(len(pu)), top] = -np.inf
        out.second[at] = pu.max(1, initial=-np.inf)
    return out


def affine_part(a: np.ndarray, s: np.ndarray, n_pos: int) -> PositionPart:
    """position_part's reductions, exactly, for p(u, j) = a_u + (j - 1) s_u over j = 1..L (a formula's position
    rows): the extremes are at the ends, every step is s_u, the first argmax is the end s_u points to (position 1
    on a tie) and the runner-up its neighbour (on a tie, the same score)."""
    last = a + (n_pos - 1) * s
    step_lo, step_hi = (s, s) if n_pos > 1 else (np.full_like(s, np.inf), np.full_like(s, -np.inf))
    top = np.where(s > 0, n_pos - 1, 0).astype(np.int64)
    top_s = np.where(s > 0, last, a)
    second = np.where(s > 0, last - s, np.where(s < 0, a + s, a)) if n_pos > 1 else np.full_like(a, -np.inf)
    return PositionPart(np.minimum(a, last), np.maximum(a, last), step_lo, step_hi, top, top_s, second)


def latest_rule(a: CodeScores, pu: PositionPart, inv: np.ndarray, b: np.ndarray):
    """(target key code per query code, least margin, "latest" or "earliest") when `the latest (earliest) key of
    one code, else BOS` fits, else None (row inv[c] of pu: query code c's position part at positions 1..L)."""
    pmin, pmax = pu.pmin[inv], pu.pmax[inv]
    beats = a.top + pmin - b            # how far the best code beats BOS at its least position
    others = b - (a.second + pmax)      # how far BOS beats every other code at its greatest position
    wins = (beats > 0) & (a.best >= 0)
    # no code wins: BOS beats the best code everywhere; where the best pattern is no code (bits outside a word's
    # range, or a tie), every real code scores at most `second`, so BOS must beat that
    alone = np.where(a.best >= 0, b - (a.top + pmax), others)
    each = np.where(wins, np.minimum(beats, others), alone)
    if not np.all(each > 0):
        return None
    margin = each.min(initial=np.inf)
    target = np.where(wins, a.best, -1)
    some = np.unique(inv[target >= 0])   # where a code can win, its latest (earliest) key must beat its others
    rising = pu.dmin[some].min(initial=np.inf)
    falling = -pu.dmax[some].max(initial=-np.inf)
    kind = "latest" if rising >= falling else "earliest"
    return target, float(min(margin, max(rising, falling))), kind


def position_rule(pu: PositionPart, inv: np.ndarray, b: np.ndarray):
    """(target position per query code, least margin, "position") when `the key at one position, else BOS` fits,
    else None (no code part: the score of query code c at positions 1..L is row inv[c] of pu)."""
    top, top_s, second = pu.top[inv], pu.top_s[inv], pu.second[inv]
    wins = top_s > b
    lose_margin = b - np.where(wins, second, top_s)
    margin = np.where(wins, np.minimum(top_s - b, lose_margin), lose_margin)
    if not np.all(margin > 0):
        return None
    return np.where(wins, top + 1, -1), float(margin.min(initial=np.inf)), "position"


def derive(model: Transformer) -> list[Rule | Refusal]:
    """Every head's rule or refusal (cached on the model per dtype)."""
    dtype = next(iter(model.w.values())).dtype
    cache = model.__dict__.setdefault("_index_rules", {})
    if dtype not in cache:
        if not model.config.get("causal") or not model.config.get("groups"):
            cache[dtype] = []
        else:
            w = Weights(model)
            u = UNIT_ROUNDOFF.get(dtype, 2.0 ** -24)
            out: list[Rule | Refusal] = []
            for i in range(model.config["n_layers"]):
                wq = w.t.get(f"layers.{i}.attn.W_Q")
                for h in range(0 if wq is None else wq.shape[0]):
                    out.append(derive_head(w, i, h, u))
            cache[dtype] = out
    return cache[dtype]
