"""Reference SUBLEQ machine in plain Python ints: the semantics the compiled transformer must match.

Memory is `mem` words of `bits`-bit two's complement. Execution starts at pc = 0 and halts once
pc < 0. One step reads A = M(pc), B = M(pc+1), C = M(pc+2), where M(i) is mem[i] inside memory and
0 outside it. If B == -1 the step outputs M(A) and goes on to pc + 3; otherwise it stores
d = wrap(M(B) - M(A)) into mem[B] (dropped when B is outside memory) and jumps to C if d <= 0,
else goes on to pc + 3. pc + 3 wraps like any word, so it can wrap to a negative (halting) value.
There is no input: A = -1 just reads M(-1) = 0. Output values are bytes: see `text`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from hardwire.compiler.check.source import read_text
from hardwire.compiler.core.errors import HardwireError

_INT = re.compile(r"[+-]?[0-9]+")


@dataclass
class SubleqState:
    """A machine snapshot: memory, program counter, steps executed, halted flag and output so far."""

    mem: list[int]
    pc: int
    steps: int
    halted: bool
    output: list[int] = field(default_factory=list)


def wrap(x: int, bits: int) -> int:
    """Map any int to the `bits`-bit two's complement range [-2^(bits-1), 2^(bits-1))."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def word_range(bits: int) -> tuple[int, int]:
    """The inclusive (lowest, highest) values of a `bits`-bit word."""
    half = 1 << (bits - 1)
    return -half, half - 1


def _check_config(mem: int, bits: int) -> None:
    if mem < 1:
        raise HardwireError(f"memory size must be at least 1 word, got {mem}")
    if bits < 2:
        raise HardwireError(f"word size must be at least 2 bits, got {bits}")


def _initial_memory(image: list[int], mem: int, bits: int) -> list[int]:
    if len(image) > mem:
        raise HardwireError(f"image has {len(image)} words but memory holds only {mem}; raise --mem")
    return [wrap(int(v), bits) for v in image] + [0] * (mem - len(image))


def _snapshot(m: list[int], pc: int, steps: int, out: list[int]) -> SubleqState:
    return SubleqState(list(m), pc, steps, pc < 0, list(out))


def run(image: list[int], mem: int = 256, bits: int = 16, max_steps: int = 10**6,
        trace: bool = False) -> SubleqState | tuple[SubleqState, list[SubleqState]]:
    """Run `image` (zero-padded to `mem` words) until pc < 0 or `max_steps` steps have executed.

    With trace=True also return a copy of the state after every executed step (index 0 = after step 1).
    """
    _check_config(mem, bits)
    m = _initial_memory(image, mem, bits)
    half, mask = 1 << (bits - 1), (1 << bits) - 1
    out: list[int] = []
    states: list[SubleqState] = []
    pc, steps = 0, 0
    while pc >= 0 and steps < max_steps:  # A, B and C are all read before the step writes
        a = m[pc] if pc < mem else 0
        b = m[pc + 1] if pc + 1 < mem else 0
        ma = m[a] if 0 <= a < mem else 0
        if b == -1:
            out.append(ma)
            pc = ((pc + 3 + half) & mask) - half
        else:
            c = m[pc + 2] if pc + 2 < mem else 0  # read before the write, which may hit pc + 2
            d = (((m[b] if 0 <= b < mem else 0) - ma + half) & mask) - half
            if 0 <= b < mem:
                m[b] = d
            if d <= 0:
                pc = c
            else:
                pc = ((pc + 3 + half) & mask) - half
        steps += 1
        if trace:
            states.append(_snapshot(m, pc, steps, out))
    final = SubleqState(m, pc, steps, pc < 0, out)
    return (final, states) if trace else final


def text(output: list[int]) -> str:
    """Render output values as text: each value is a byte, so v becomes chr(v % 256)."""
    return "".join(chr(v % 256) for v in output)


def parse_image(text: str, mem: int, bits: int, file: str = "<input>") -> list[int]:
    """Parse whitespace-separated integers (`#` comments to end of line) into a checked image."""
    _check_config(mem, bits)
    lo, hi = word_range(bits)
    words: list[int] = []
    overflow_at: tuple[int, int] | None = None
    for lineno, line in enumerate(text.split("\n"), start=1):
        for col, token in _tokens(line.split("#", 1)[0]):
            if not _INT.fullmatch(token):
                raise HardwireError(f"'{token}' is not an integer", file, lineno, col)
            value = int(token)
            if not lo <= value <= hi:
                raise HardwireError(f"value {value} is outside the {bits}-bit word range [{lo}, {hi}]",
                                    file, lineno, col)
            words.append(value)
            if len(words) == mem + 1:
                overflow_at = (lineno, col)
    if overflow_at is not None:
        raise HardwireError(f"image has {len(words)} words but memory holds only {mem}; raise --mem",
                            file, *overflow_at)
    return words


def _tokens(line: str) -> list[tuple[int, str]]:
    """Whitespace-separated tokens of `line` with their 1-based columns."""
    found, col, n = [], 0, len(line)
    while col < n:
        if line[col].isspace():
            col += 1
            continue
        start = col
        while col < n and not line[col].isspace():
            col += 1
        found.append((start + 1, line[start:col]))
    return found


def load_image(path: str, mem: int, bits: int) -> list[int]:
    """Load a SUBLEQ image file (see parse_image) so errors name the file, line and column."""
    return parse_image(read_text(path), mem, bits, path)
