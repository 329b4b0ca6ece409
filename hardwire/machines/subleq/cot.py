"""The trace-mode SUBLEQ (`hardwire subleq --mode cot`): a causal transformer whose generated tokens are the
machine's trace, three tokens per instruction, so no size but the position table depends on the memory size.

A token is one word of the program's width bits + 2, tagged by its band (H = 2^(bits-1), F = 2^bits):

    PC(p)   = p - F   in [-3H, -H)   the pc of the instruction to execute next
    VAL(v)  = v       in [-H, H)     the value written to memory (or the value output)
    ADDR(x) = x + F   in [H, 3H)     the write address b of the instruction (-1: an output)
    STOP    = 3H                     the machine halted (the next pc is negative)

The prompt is the image as writes: ADDR(i), VAL(image[i]) for each non-zero word i, then PC(0). Each step then
generates ADDR(b), VAL(d) (VAL(m[a]) for an output) and PC(next pc), or STOP. A read of address x is the latest
write to x (a VAL position, whose address is the ADDR token just before it), else 0, the image's default.
"""
from __future__ import annotations

from dataclasses import dataclass

from hardwire.machines.subleq import emulator as subleq_ref


@dataclass(frozen=True)
class Tokens:
    """The token encoding of one word width."""
    bits: int

    @property
    def half(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def width(self) -> int:
        """The program's word width: the four bands need two more bits than a SUBLEQ word."""
        return self.bits + 2

    def pc(self, p: int) -> int:
        return p - (1 << self.bits)

    def val(self, v: int) -> int:
        return v

    def addr(self, x: int) -> int:
        return x + (1 << self.bits)

    @property
    def stop(self) -> int:
        return 3 * self.half

    def role(self, tok: int) -> str:
        """'pc', 'val', 'addr' or 'stop' of a token."""
        if tok < -self.half:
            return "pc"
        if tok < self.half:
            return "val"
        return "addr" if tok < 3 * self.half else "stop"

    def field(self, tok: int) -> int:
        """The value a token carries (its pc, value or address)."""
        return {"pc": tok + (1 << self.bits), "val": tok, "addr": tok - (1 << self.bits), "stop": 0}[self.role(tok)]


def prompt(image: list[int], bits: int) -> list[int]:
    """The image as writes, ADDR(i) VAL(image[i]) for every non-zero word, then PC(0)."""
    enc = Tokens(bits)
    out = []
    for i, v in enumerate(image):
        v = subleq_ref.wrap(int(v), bits)
        if v:
            out += [enc.addr(i), enc.val(v)]
    return out + [enc.pc(0)]


def trace_tokens(image: list[int], mem: int, bits: int, max_steps: int) -> list[int]:
    """The tokens the model must generate, from the emulator's own trace: per step ADDR(b), VAL(written or output
    value), then PC(next pc), or STOP when it is negative."""
    enc = Tokens(bits)
    final, states = subleq_ref.run(image, mem=mem, bits=bits, max_steps=max_steps, trace=True)
    m = [subleq_ref.wrap(int(v), bits) for v in image] + [0] * (mem - len(image))
    pc, out_len, toks = 0, 0, []
    for st in states:
        b = m[pc + 1] if pc + 1 < mem else 0
        if len(st.output) > out_len:        # an output step: b == -1, it wrote nothing
            value = st.output[-1]
        else:
            a = m[pc] if pc < mem else 0
            ma = m[a] if 0 <= a < mem else 0
            value = subleq_ref.wrap((m[b] if 0 <= b < mem else 0) - ma, bits)
        toks += [enc.addr(b), enc.val(value), enc.stop if st.pc < 0 else enc.pc(st.pc)]
        pc, out_len, m = st.pc, len(st.output), st.mem
    return toks


@dataclass
class Replay:
    """What a generated trace records: the steps, whether it halted, the output and the final memory."""
    steps: int
    halted: bool
    output: list[int]
    mem: list[int]
    pc: int


def replay(image: list[int], mem: int, bits: int, generated: list[int]) -> Replay:
    """Read the run back off the generated tokens alone (never re-executing an instruction): ADDR(-1) VAL(v) is an
    output of v; ADDR(b) VAL(v) with b in memory writes v to b; a write outside memory is dropped."""
    enc = Tokens(bits)
    m = [subleq_ref.wrap(int(v), bits) for v in image] + [0] * (mem - len(image))
    out: list[int] = []
    steps, pc, halted, addr = 0, 0, False, None
    for tok in generated:
        role = enc.role(tok)
        if role == "addr":
            addr = enc.field(tok)
        elif role == "val" and addr is not None:
            steps += 1
            if addr == -1:
                out.append(tok)
            elif 0 <= addr < mem:
                m[addr] = tok
            addr = None
        elif role == "pc":
            pc = enc.field(tok)
        elif role == "stop":
            halted = True
            break
    return Replay(steps, halted, out, m, pc)


def max_mem() -> int:
    """The largest memory whose heads runtime/index_attention.py can prove: a query word takes mem + 1 codes
    (addresses 0..mem-1 and mem for outside memory), at most CODE_CAP; a key takes mem + 1 too (-1: no write)."""
    from hardwire.runtime.index_attention import CODE_CAP
    return CODE_CAP - 1


def max_len_for(prompt_len: int, steps: int) -> int:
    """Positions a run needs: the prompt and three tokens per step, rounded up to a power of two (at least 64) so
    that runs of about the same length share one compiled model."""
    need = prompt_len + 3 * steps
    return max(64, 1 << (need - 1).bit_length())


def cot_program(mem: int, bits: int, max_len: int) -> str:
    """The .hw text of the trace-mode SUBLEQ for `mem` words of `bits` bits and `max_len` positions."""
    H, F = 1 << (bits - 1), 1 << bits
    stop = 3 * H
    return f'''# SUBLEQ by chain of thought (`hardwire subleq --mode cot`), from hardwire/machines/subleq/cot.py:
# {mem} words of {bits} bits, {max_len} positions. The tokens are the trace, three per instruction:
#   PC(p) = p - {F}, VAL(v) = v, ADDR(x) = x + {F}, STOP = {stop}
# The prompt is the image as writes, ADDR(i) VAL(image[i]) per non-zero word, then PC(0). At a PC position the
# model fetches a, b, c = m[pc], m[pc+1], m[pc+2], then m[a], m[b]: a read of address x is the latest VAL position
# whose address (the ADDR token before it) is x, else 0 (BOS), a `latest` over a word select. It emits ADDR(b); the
# ADDR position emits VAL(d), d = m[b] - m[a] wrapped to {bits} bits (VAL(m[a]) after ADDR(-1), an output); the VAL
# position emits PC(c) if its own value is <= 0 (c is pc + 3 for an output), else PC(pc + 3), or STOP for a negative
# pc. A key is the address at a VAL position that writes memory, else -1; a query outside memory is {mem}, never a
# key, so it reads 0. Each query word has a known range, [0, {mem}], whose codes runtime/index_attention.py lists to
# prove every head `latest`.
program subleq_cot
word {bits + 2}
vocab word
max_len {max_len}
causal
generate next stop {{{stop}}}

is_pc = tokens < {-H}
is_addr = tokens >= {H}
# an ADDR token's address, or -1 outside memory (a dropped write, an output); a VAL position takes its ADDR's
ak = tokens - {F}
akey = if ak < 0 then word(-1) else if ak >= {mem} then word(-1) else ak
# word(...) holds an `if` in the residual once: each select on it reads the same bits
wkey = word(if is_pc then word(-1) else if is_addr then word(-1) else latest(select(is_addr, true, ==), akey))
# at a PC position: the instruction, then its operands (a query outside memory asks for address {mem})
pc = tokens + {F}
p1 = pc + 1
p2 = pc + 2
a = latest(select(wkey, if pc < 0 then word({mem}) else if pc >= {mem} then word({mem}) else pc, ==), tokens)
b = latest(select(wkey, if p1 < 0 then word({mem}) else if p1 >= {mem} then word({mem}) else p1, ==), tokens)
c = latest(select(wkey, if p2 < 0 then word({mem}) else if p2 >= {mem} then word({mem}) else p2, ==), tokens)
va = latest(select(wkey, if a < 0 then word({mem}) else if a >= {mem} then word({mem}) else a, ==), tokens)
vb = latest(select(wkey, if b < 0 then word({mem}) else if b >= {mem} then word({mem}) else b, ==), tokens)
raw = vb - va
d = if raw >= {H} then raw - {F} else if raw < {-H} then raw + {F} else raw
# the next PC token when the written value is > 0 (pc + 3, wrapped: past {H - 1} it is negative, so STOP), and
# when it is <= 0 (c, or pc + 3 for an output, which jumps never)
ahead = word(if pc >= {H - 3} then word({stop}) else pc - {F - 3})
jumped = if b == -1 then ahead else if c < 0 then word({stop}) else c - {F}
# the ADDR and VAL positions read what their PC position computed
d_of = latest(select(is_pc, true, ==), d)
va_of = latest(select(is_pc, true, ==), va)
ahead_of = latest(select(is_pc, true, ==), ahead)
jumped_of = latest(select(is_pc, true, ==), jumped)
at_val = if tokens <= 0 then jumped_of else ahead_of
output next = if is_pc then b + {F} else if tokens == {F - 1} then va_of else if is_addr then d_of else at_val
'''
