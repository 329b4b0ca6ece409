"""Turing machines in the bbchallenge text format: parser, direct simulator, and .hw program generators.

`1RB1LB_1LA1RZ`: one `_`-separated group per state A, B, ...; in each group one triple per read
symbol 0, 1, ...: the symbol to write, the move (L/R) and the next state. A next state `Z`, `H` or
`-` halts after the write and move (that step counts); `---` is undefined: the machine stops there
without taking a step. The tape is blank (0) and the head at cell 0, state A, unless an input is given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from hardwire.compiler.core.errors import HardwireError

HALT = "Z"
UNDEFINED = "?"
_TRIPLE = re.compile(r"([0-9])([LR])([A-Z\-])|(---)")


@dataclass
class Machine:
    spec: str
    states: list[str]
    symbols: int
    table: dict  # (state, read) -> (write, move +1/-1, next state or HALT) or None (undefined)


@dataclass
class Run:
    steps: int
    halted: bool
    tape: dict[int, int] = field(default_factory=dict)  # cell -> symbol (non-blank cells only)
    head: int = 0
    state: str = "A"
    head_min: int = 0
    head_max: int = 0

    @property
    def ones(self) -> int:
        """Non-blank cells (the busy beaver 'sigma')."""
        return sum(1 for v in self.tape.values() if v)

    def window(self, lo: int, hi: int) -> list[int]:
        return [self.tape.get(c, 0) for c in range(lo, hi + 1)]


def parse_spec(spec: str) -> Machine:
    """A machine from its standard text; a malformed group is named in the error."""
    spec = spec.strip()
    groups = spec.split("_")
    if not spec or not groups:
        raise HardwireError("empty Turing machine spec; expected e.g. 1RB1LB_1LA1RZ")
    n = len(groups)
    if n > 26 - 1:
        raise HardwireError(f"{n} states: at most 25 (A..Y; Z halts)")
    states = [chr(ord("A") + i) for i in range(n)]
    width = len(groups[0])
    if width % 3 or width == 0:
        raise HardwireError(f"group 1 {groups[0]!r} (state A): expected 3 characters per symbol, e.g. 1RB")
    symbols = width // 3
    table: dict = {}
    for i, g in enumerate(groups):
        where = f"group {i + 1} {g!r} (state {states[i]})"
        if len(g) != width:
            raise HardwireError(f"{where}: has {len(g)} characters; every group needs {width} "
                                f"({symbols} symbols x 3)")
        for s in range(symbols):
            t = g[3 * s:3 * s + 3]
            m = _TRIPLE.fullmatch(t)
            if not m:
                raise HardwireError(f"{where}: {t!r} for symbol {s} is not a transition like 1RB or ---")
            if m.group(4):
                table[(states[i], s)] = None
                continue
            write, move, nxt = int(m.group(1)), 1 if m.group(2) == "R" else -1, m.group(3)
            if write >= symbols:
                raise HardwireError(f"{where}: {t!r} writes symbol {write}, but the machine has {symbols} symbols")
            if nxt in ("Z", "H", "-"):
                nxt = HALT
            elif nxt not in states:
                raise HardwireError(f"{where}: {t!r} goes to state {nxt}, but the machine has states "
                                    f"{states[0]}..{states[-1]} (Z, H or - halt)")
            table[(states[i], s)] = (write, move, nxt)
    return Machine(spec, states, symbols, table)


def parse_tape(text: str | None, symbols: int) -> list[int]:
    """An input tape: digits, optionally separated by spaces (`0110` or `0 1 1 0`)."""
    if not text:
        return []
    cells = [c for c in text if not c.isspace()]
    bad = [c for c in cells if not c.isdigit() or int(c) >= symbols]
    if bad:
        raise HardwireError(f"input tape symbol {bad[0]!r} is not one of 0..{symbols - 1}")
    return [int(c) for c in cells]


def run_steps(tm: Machine, tape: dict[int, int], max_steps: int):
    """The machine's steps from state A at cell 0 on `tape` (cell -> non-blank symbol, updated in place), one
    (new state, written symbol, move, head after) each, until Z, an undefined transition or max_steps."""
    table = tm.table
    state, head, steps = "A", 0, 0
    while state != HALT and steps < max_steps:
        t = table[(state, tape.get(head, 0))]
        if t is None:
            return
        write, move, state = t
        if write:
            tape[head] = write
        else:
            tape.pop(head, None)
        head += move
        steps += 1
        yield state, write, move, head


def undefined_at(tm: Machine, state: str, tape: dict[int, int], head: int) -> bool:
    """Whether the machine, not in Z, has no transition for the symbol under its head."""
    return state != HALT and tm.table[(state, tape.get(head, 0))] is None


def simulate(tm: Machine, tape_input: list[int] | None = None, max_steps: int = 10**6,
             trace: list | None = None) -> Run:
    """The direct simulator: a dict tape, unbounded in both directions. trace gets (state, head, tape)."""
    tape = {i: v for i, v in enumerate(tape_input or []) if v}
    state, head, steps, lo, hi = "A", 0, 0, 0, 0
    for state, _, _, head in run_steps(tm, tape, max_steps):
        steps += 1
        lo, hi = min(lo, head), max(hi, head)
        if trace is not None:
            trace.append((state, head, dict(tape)))
    halted = state == HALT or undefined_at(tm, state, tape, head)
    return Run(steps, halted, tape, head, state, lo, hi)


def loop_program(tm: Machine, cells: int, offset: int) -> str:
    """programs/turing_loop.hw for this machine: tape cells are positions; one pass is one step."""
    bits = max(4, (cells + offset + 2).bit_length() + 1)
    rows = []
    for q in tm.states + [HALT, UNDEFINED]:
        for s in range(tm.symbols):
            t = tm.table.get((q, s))
            if q in (HALT, UNDEFINED) or t is None:
                write, move, nxt = s, 0, (q if q in (HALT, UNDEFINED) else UNDEFINED)
            else:
                write, move, nxt = t
            rows.append(f'    ("{q}", {s}) -> ({write}, {move}, "{nxt}")')
    state_set = ", ".join(f'"{q}"' for q in tm.states + [HALT, UNDEFINED])
    return f'''# The Turing machine {tm.spec} as a looped transformer, generated by `hardwire tm --mode loop`.
# Tape cells are positions (cell c at position c + {offset}); the head and the state are registers.
# One pass of the loop body is one step: read the cell under the head (an attention head that
# matches the head's bits), look up the transition (an MLP), write, move, change state.
program turing_loop
word {bits}
vocab {{{", ".join(str(s) for s in range(tm.symbols))}}}
max_len {cells}

table delta {{
{(","+chr(10)).join(rows)}
}}

state tape in {{{", ".join(str(s) for s in range(tm.symbols))}}} = tokens
state q in {{{state_set}}} = "A"
state head = word({offset})

loop until q == "{HALT}" | step[2] == "{UNDEFINED}" {{
  sym = default(aggregate(select(indices, head, ==), tape), 0)
  step = delta[q, sym]
  tape := if indices == head then step[0] else tape
  q := step[2]
  head := head + step[1]
}}
output final_tape = tape
output final_head = head
output final_state = q
'''


def window_for(tm: Machine, tape_input: list[int], ref: Run, cells: int | None) -> tuple[int, int]:
    """(cells, offset): a tape window holding every cell the reference run visits (cell c at c + offset)."""
    lo, hi = min(ref.head_min, 0), max(ref.head_max, len(tape_input) - 1, 0)
    need = hi - lo + 1
    if cells is None:
        cells = need
    elif cells < need:
        raise HardwireError(f"the machine visits cells {lo}..{hi} ({need} cells), more than --tape {cells}; "
                            f"raise --tape to at least {need}")
    return cells, -lo + (cells - need) // 2


def step_token(state: str, write: int, move: int, head_after: int) -> str:
    """One chain-of-thought token: the step's new state, written symbol, move and the head after it."""
    return f"{state}{write}{'R' if move > 0 else 'L'}{head_after}"


def cot_tokens(trace: list, ref: Run | None = None, step=step_token, halt="halt") -> list:
    """The chain of thought of a simulated run: step(state, written symbol, move, head after) per entry of
    simulate's trace, then `halt` when ref (the run) stopped at an undefined transition, which takes no step."""
    out, head = [], 0
    for state, new_head, tape in trace:
        out.append(step(state, tape.get(head, 0), new_head - head, new_head))
        head = new_head
    if ref is not None and ref.halted and ref.state != HALT:
        out.append(halt)
    return out


def cot_length(prompt_len: int, ref: Run) -> int:
    """Tokens in all: the prompt, one per step, and a final `halt` if the machine stopped at an undefined cell."""
    return prompt_len + ref.steps + (1 if ref.halted and ref.state != HALT else 0)


def cot_program(tm: Machine, prompt_len: int, lo: int, hi: int, max_len: int) -> str:
    """programs/turing_cot.hw for this machine: the prompt is the tape (cell c at position c); each generated
    token is one step. One layer: two heads find the symbol under the head (the latest write to its cell,
    else the input cell), and one MLP applies the transition table."""
    syms = list(range(tm.symbols))
    steps = {}  # token -> (state, write, head_after, cell written)
    for _key, t in sorted(tm.table.items()):
        if t is None:
            continue
        write, move, nxt = t
        for h in range(lo, hi + 1):
            if lo <= h + move <= hi:
                steps[step_token(nxt, write, move, h + move)] = (nxt, write, h + move, h)
    vocab = [str(s) for s in syms] + [f'"{tok}"' for tok in sorted(steps)] + ['"halt"']
    bits = max(max_len, -lo, hi + 1).bit_length() + 1   # positions 0..max_len and cells lo..hi as signed words
    stop = [f'"{tok}"' for tok, (q, *_) in sorted(steps.items()) if q == HALT] + ['"halt"']

    def table(name: str, rows: list[tuple]) -> str:
        body = (",\n").join(f"  {k} -> {v}" for k, v in rows)
        return f"table {name} {{\n{body}\n}}"
    q_rows = [(s, '"A"') for s in syms] + [(f'"{t}"', f'"{v[0]}"') for t, v in sorted(steps.items())]
    h_rows = [(s, 0) for s in syms] + [(f'"{t}"', v[2]) for t, v in sorted(steps.items())]
    q_rows.append(('"halt"', f'"{HALT}"'))  # after "halt" nothing is generated; the rows keep `next` total
    h_rows.append(('"halt"', lo))
    cell_rows = [(f'"{t}"', v[3]) for t, v in sorted(steps.items())]
    sym_rows = [(f'"{t}"', v[1]) for t, v in sorted(steps.items())]
    input_rows = [(s, s) for s in syms]
    delta_rows = []
    for q in tm.states + [HALT]:  # (generation stops at a halting step, so Z rows are never used)
        for h in range(lo, hi + 1):
            for s in syms:
                t = tm.table.get((q, s))
                if t is None or not lo <= h + t[1] <= hi:
                    nxt = '"halt"'
                else:
                    nxt = f'"{step_token(t[2], t[0], t[1], h + t[1])}"'
                delta_rows.append((f'("{q}", {h}, {s})', nxt))
    return f'''# The Turing machine {tm.spec} by chain of thought, generated by `hardwire tm --mode cot`.
# The prompt is the input tape (cell c at position c); each generated token is one step, written as
# new state, written symbol, move and the head's cell after the move (e.g. B1R1). Cells {lo}..{hi}.
program turing_cot
word {bits}
vocab {{{", ".join(vocab)}}}
max_len {max_len}
causal
generate next stop {{{", ".join(stop)}}}

{table("state_of", q_rows)}
{table("head_of", h_rows)}
{table("cell_written", cell_rows)}
{table("symbol_written", sym_rows)}
{table("input_symbol", input_rows)}
{table("delta", delta_rows)}

q = state_of[tokens]
h = head_of[tokens]
# the symbol under the head: the latest step that wrote the head's cell, else the input there, else blank.
# `given` matches position bits against the head's (a margin of 1 at any length, and O(log max_len) dims);
# a step token at index h has no input symbol, so it reads as none, like a cell past the prompt.
written = latest(select(cell_written[tokens], h, ==), symbol_written[tokens])
given = aggregate(select(word(indices), word(h), ==), input_symbol[tokens])
sym = default(written, default(given, 0))
output next = delta[q, h, sym]
'''
