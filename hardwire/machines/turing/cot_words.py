"""The chain-of-thought Turing machine with word tokens: a step is one token, the word `code * M + cell field`,
so the vocabulary, d_model and the embedding grow with log(cells), not with the cells nor the run's length
(proofs/turing_cot.md).

A token's code says what the token is (an input symbol; a step's new state, written symbol and move; halt) and
its low field a cell (cell - lo + 1, in [1, C]): the head's cell after a step, an input symbol's own cell. The
prompt lists the input cells from the last down to cell 0, so each input token is the write of its symbol to its
cell and the last leaves the head at 0. Codes are ordered so that every field the program needs is a linear
function of K - 1 threshold tests `tokens >= code * M`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardwire.machines.turing import tm as tmlib


@dataclass(frozen=True)
class Code:
    """One token code: kind "in" (symbol s), "step" (new state q, wrote w, moved mv) or "halt"."""
    kind: str
    q: str = "A"
    w: int = 0
    mv: int = 0
    s: int = 0


@dataclass
class WordCot:
    """The encoding of one machine and window: its codes, the field width M and the word width."""
    codes: list[Code]
    lo: int
    hi: int
    M: int
    bits: int
    states: list[str]

    def token(self, code: Code, cell: int) -> int:
        """The word of `code` at `cell` (a step: the head's cell after it; an input symbol: its cell; halt: field 0)."""
        field = 0 if code.kind == "halt" else cell - self.lo + 1
        return self.codes.index(code) * self.M + field

    def prompt(self, tape: list[int]) -> list[int]:
        """The prompt's words: input symbol s at cell c is the code of s at cell c, last cell first, so the prompt
        ends at cell 0, where the head starts."""
        return [self.token(Code("in", s=s), c) for c, s in reversed(list(enumerate(tape)))]

    @property
    def halt(self) -> int:
        return self.token(self.codes[-1], 0)

    def decode(self, word: int) -> tuple[Code, int]:
        """(code, head cell after it) of a token word."""
        code = self.codes[word // self.M]
        return code, word % self.M + self.lo - 1


def encoding(tm: tmlib.Machine, lo: int, hi: int, max_len: int) -> WordCot:
    """Codes in the order the program's chains need: per symbol s, the input symbol s and then the steps that write
    s (so the written symbol `w` is a chain of tests), then halt. The word holds the codes' fields and the window's
    cells, not the position: nothing in the program is a word of the position (max_len is the index's range)."""
    steps = sorted({(t[1], t[2], t[0]) for t in tm.table.values() if t is not None}, key=lambda x: (x[2], x[1], x[0]))
    codes = [c for s in range(tm.symbols) for c in [Code("in", s=s)] + [Code("step", q, w, mv) for mv, q, w in steps
                                                                        if w == s]] + [Code("halt", q=tmlib.HALT)]
    cells = hi - lo + 1
    M = 1 << (cells + 1).bit_length()   # fields 0..C+1: a step one past the window stays out of the code
    top = max(len(codes) * M, -lo + 1, hi + 2)
    states = ["A"] + [q for q in tm.states[1:]] + [tmlib.HALT]
    return WordCot(codes, lo, hi, M, top.bit_length() + 1, states)


def step_word(enc: WordCot, state: str, write: int, move: int, head_after: int) -> int:
    """The simulator's step as the token the model must generate."""
    return enc.token(Code("step", state, write, move), head_after)


def cot_word_program(tm: tmlib.Machine, prompt_len: int, lo: int, hi: int, max_len: int) -> str:
    """The program of `hardwire tm --mode cot`: 4 layers, 1 head, d_model O(log cells)."""
    enc = encoding(tm, lo, hi, max_len)
    codes, M = enc.codes, enc.M
    K = len(codes)
    g = [f"g{k}" for k in range(K)]   # g[k] = tokens >= k*M: the code is at least k (g0 is always true)

    def lin(vals: list[int]) -> str:
        """vals[code] as a word: its value at code 0 plus its steps at each threshold (b_k = word(0) + g_k is a
        linear view of the boolean g_k: no block until a sum of them is needed as bits)."""
        text = f"word({vals[0]})" if vals[0] >= 0 else f"word(0) - {-vals[0]}"
        for k in range(1, K):
            d = vals[k] - vals[k - 1]
            if d:
                text += f" {'+' if d > 0 else '-'} {abs(d)} * b{k}"
        return text

    def chain(vals: list[int]) -> str:
        """vals[code] as a one-hot value, constant on runs of codes: `if g_k then v else ...`."""
        text = str(vals[0])
        for k in range(1, K):
            if vals[k] != vals[k - 1]:
                text = f"if {g[k]} then {vals[k]} else {text}"
        return text

    qi = {q: i for i, q in enumerate(enc.states)}
    sentinel = hi + 1   # the cell a non-step token "wrote": no head is ever there
    tests = "\n".join(f"{g[k]} = tokens >= {k * M}\nb{k} = word(0) + {g[k]}" for k in range(1, K))
    q_chain = " else ".join(f'if qi == {i} then "{q}"' for q, i in qi.items() if i) + ' else "A"'
    ws = [c.w if c.kind == "step" else c.s for c in codes]
    ws[-1] = ws[-2]   # halt writes nothing and is never matched: any value; the last step's keeps the chain short
    # the cell written is the head's cell less the move; an input symbol writes its own cell (no move), halt's
    # field 0 (cell lo - 1) less lo - 1 - sentinel is the sentinel
    mvs = [c.mv if c.kind == "step" else 0 if c.kind == "in" else lo - 1 - sentinel for c in codes]
    w_of = chain(ws)
    syms = list(range(tm.symbols))
    rows = []
    for q in enc.states:
        for s in syms:
            t = tm.table.get((q, s))
            if t is None:
                rows.append((f'("{q}", {s})', f"({K - 1}, 0, true)"))
            else:
                write, move, nxt = t
                rows.append((f'("{q}", {s})', f"({codes.index(Code('step', nxt, write, move))}, {move}, false)"))
    body = ",\n".join(f"  {k} -> {v}" for k, v in rows)
    stop = enc.halt
    return f'''# The Turing machine {tm.spec} by chain of thought with word tokens (`hardwire tm --mode cot`).
# A token is the word code * {M} + (cell - {lo} + 1): its code is an input symbol, a step (new state, written
# symbol, move) or halt, and its low field the head's cell after a step, an input symbol's own cell. The prompt
# lists the input cells from the last down to cell 0. Cells {lo}..{hi}; {K} codes.
program turing_cot_words
word {enc.bits}
vocab word
max_len {max_len}
causal
generate next stop {{{stop}}}

table delta {{
{body}
}}

{tests}
code = word(0){"".join(f" + b{k}" for k in range(1, K))}
h = tokens - {M} * code + {lo - 1}
# the cell a step wrote is the cell before its move; an input symbol writes its own cell; halt "wrote" cell
# {sentinel}, off the tape
cell_written = tokens - {M} * code + {lo - 1} - ({lin(mvs)})
qi = {lin([qi[c.q] for c in codes])}
q = {q_chain}
w = {w_of}
# the symbol under the head: the latest token that wrote the head's cell (a word `==` head with `latest`: a
# step, else the input symbol there), else blank
written = latest(select(cell_written, h, ==), w)
sym = default(written, 0)
step = delta[q, sym]
output next = if step[2] then word({stop}) else (word(0) + step[0]) * {M} + h + step[1] + {1 - lo}
'''


def simulated_words(tm: tmlib.Machine, tape_input: list[int], enc: WordCot, steps: int) -> np.ndarray:
    """The simulator's chain of thought as words, straight into an int64 array (no trace of tapes, so a run of
    47 million steps takes a few hundred MB): tmlib.run_steps, each step written as step_word, then the `halt`
    word when the run stops at an undefined transition within `steps`."""
    out = np.empty(steps + 1, np.int64)
    tape = {i: v for i, v in enumerate(tape_input) if v}
    M, lo = enc.M, enc.lo
    index = {c: k for k, c in enumerate(enc.codes)}
    code_of = {(q, w, mv): index[Code("step", q, w, mv)] for t in tm.table.values() if t is not None
               for w, mv, q in [t]}
    state, head, n = "A", 0, 0
    for n, (state, write, move, head) in enumerate(tmlib.run_steps(tm, tape, steps), start=1):
        out[n - 1] = code_of[(state, write, move)] * M + head - lo + 1
    if tmlib.undefined_at(tm, state, tape, head):
        out[n] = enc.halt
        n += 1
    return out[:n]


def replay_words(enc: WordCot, prompt: list[int], words: np.ndarray) -> tuple[dict[int, int], int, str, int]:
    """(tape, head, state, steps) that a chain of generated words records, in numpy (every step token's written
    cell and symbol from its code; the last write to a cell wins). A word that is no step ends the replay."""
    kinds = np.array([c.kind == "step" for c in enc.codes])
    n_codes = len(enc.codes)
    code, field = words // enc.M, words % enc.M
    ok = (words >= 0) & (code < n_codes)
    ok &= kinds[np.where(ok, code, 0)]
    n = int(np.argmin(ok)) if not ok.all() else len(words)
    code, cell_after = code[:n], field[:n] + enc.lo - 1
    mv = np.array([c.mv for c in enc.codes])[code]
    sym = np.array([c.w for c in enc.codes])[code]
    cell = cell_after - mv
    last = {}
    if n:   # the last write per cell: unique over the reversed chain keeps each cell's last occurrence
        cells, first = np.unique(cell[::-1], return_index=True)
        last = dict(zip(cells.tolist(), sym[::-1][first].tolist()))
    tape = {c: s for c, s in enumerate(prompt) if s}
    tape.update(last)
    tape = {c: s for c, s in tape.items() if s}
    head = int(cell_after[-1]) if n else 0
    state = enc.codes[int(code[-1])].q if n else "A"
    return tape, head, state, n
