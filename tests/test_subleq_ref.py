"""The reference SUBLEQ machine and its assembler: corpus, naive twin, examples, errors, wrap()."""
import json
from pathlib import Path

import pytest
from hardwire.compiler.core.errors import HardwireError
from hypothesis import given
from hypothesis import strategies as st

from hardwire.machines.subleq import asm as subleq_asm
from hardwire.machines.subleq import emulator as subleq_ref

ROOT = Path(__file__).resolve().parents[1]
CORPUS_HELLO = ROOT / "tests" / "data" / "subleq" / "hello.sq"  # a copy of ../shared/corpus/subleq
EXAMPLES = ROOT / "programs" / "subleq"
EXPECTED = json.loads((EXAMPLES / "expected.json").read_text())


# ---- corpus ---------------------------------------------------------------------------------------

def test_corpus_hello():
    image = subleq_ref.load_image(str(CORPUS_HELLO), 256, 16)
    state = subleq_ref.run(image, mem=256, bits=16)
    assert subleq_ref.text(state.output) == "Hello, world!\n"
    assert state.steps == 71 and state.halted and state.pc < 0


# ---- a naive twin ---------------------------------------------------------------------------------

def naive(image, mem, bits, max_steps):
    """Deliberately simple: dict memory, modular arithmetic, one snapshot per step."""
    m, pc, out, snaps = dict(enumerate(image)), 0, [], []
    size = 2 ** bits

    def w(x):
        return (x + size // 2) % size - size // 2

    def get(i):
        return m.get(i, 0) if 0 <= i < mem else 0

    while pc >= 0 and len(snaps) < max_steps:
        a, b, c = get(pc), get(pc + 1), get(pc + 2)
        if b == -1:
            out.append(get(a))
            pc = w(pc + 3)
        else:
            d = w(get(b) - get(a))
            if 0 <= b < mem:
                m[b] = d
            pc = c if d <= 0 else w(pc + 3)
        snaps.append(([get(i) for i in range(mem)], pc, list(out)))
    return snaps


@st.composite
def machines(draw):
    mem = draw(st.sampled_from([8, 16, 32]))
    bits = draw(st.sampled_from([4, 8, 16]))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    # Mostly addresses near memory (and -1, the output marker) so programs jump and write a lot.
    word = st.one_of(st.integers(-2, min(mem + 2, hi)), st.integers(lo, hi))
    image = draw(st.lists(word, max_size=mem))
    return image, mem, bits


@given(machines(), st.integers(0, 200))
def test_run_matches_naive_twin(machine, max_steps):
    image, mem, bits = machine
    final, states = subleq_ref.run(image, mem=mem, bits=bits, max_steps=max_steps, trace=True)
    snaps = naive(image, mem, bits, max_steps)
    assert len(states) == len(snaps) == final.steps
    for k, (state, (m, pc, out)) in enumerate(zip(states, snaps), start=1):
        assert (state.mem, state.pc, state.output, state.steps) == (m, pc, out, k)
        assert state.halted == (pc < 0)
    if snaps:
        assert (final.mem, final.pc, final.output) == snaps[-1]
    assert final.halted == (final.pc < 0)
    assert final.halted or final.steps == max_steps


def test_trace_states_are_copies():
    final, states = subleq_ref.run([3, 4, -1, 1, 5], mem=8, bits=8, trace=True)
    assert states[0].mem[4] == 4 and states[0].pc == 3 and not states[0].halted
    states[0].mem[0] = 99
    assert final.mem[0] == 3 and states[1].mem[0] == 3


def test_jump_target_is_read_before_the_write():
    # `3 2 7` at 0 writes mem[2] = M(2) - M(3) = 7 - 7 = 0 and must jump to the old C = 7, not 0.
    state = subleq_ref.run([3, 2, 7, 7, 0, 0, 0, 0, 0, -1], mem=16, bits=8, max_steps=5)
    assert state.mem[2] == 0 and state.halted and state.steps == 2


def test_out_of_range_reads_writes_and_pc_wrap():
    # A = 50 and B = 100 are outside memory: M(A) = M(B) = 0, the write is dropped, d = 0 -> jump to C = -1.
    state = subleq_ref.run([50, 100, -1], mem=8, bits=8)
    assert state.mem == [50, 100, -1, 0, 0, 0, 0, 0] and state.halted and state.steps == 1
    # 4-bit words: jump to 6, output M(1) = 3, then pc = 6 + 3 = 9 wraps to -7, which halts.
    state = subleq_ref.run([0, 3, 6, 0, 0, 0, 1, -1], mem=16, bits=4)
    assert state.output == [3] and state.pc == -7 and state.halted and state.steps == 2


def test_max_steps_stops_a_loop():
    state = subleq_ref.run([0, 0, 0], mem=4, bits=8, max_steps=1000)
    assert state.steps == 1000 and not state.halted and state.pc == 0


def test_text_treats_values_as_bytes():
    assert subleq_ref.text([72, 105, -246, 256 + 33]) == "Hi\n!"


# ---- example programs -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_program(name):
    image = subleq_asm.assemble_file(str(EXAMPLES / name))
    assert len(image) <= 256
    state = subleq_ref.run(image, mem=256, bits=16, max_steps=20_000)
    assert state.halted
    assert state.output == EXPECTED[name]["output"]
    assert subleq_ref.text(state.output) == EXPECTED[name]["text"]


def test_every_example_has_an_expectation():
    assert sorted(p.name for p in EXAMPLES.glob("*.sqa")) == sorted(EXPECTED)


# ---- assembler ------------------------------------------------------------------------------------

def test_assembler_forms():
    src = """
    start: a b          # C defaults to the next instruction
           a b start
           out a ; sugar for a -1 ?
           halt
    a:     .data 'H' '\\n' a+1 a-2 ? -5 0x10
    b:     .string "hi #;"
    """
    image = subleq_asm.assemble(src)
    a = 12
    assert image[:12] == [a, a + 7, 3, a, a + 7, 0, a, -1, 9, 0, 0, -1]
    assert image[12:19] == [72, 10, a + 1, a - 2, 17, -5, 16]
    assert image[19:] == [ord(c) for c in "hi #;"]


def test_labels_may_share_lines_and_be_used_before_definition():
    assert subleq_asm.assemble("x: y: .data x y z\nz: .data 3") == [0, 0, 3, 3]


@pytest.mark.parametrize("src, line, column, words", [
    ("  Z Z nowhere\nZ: .data 0", 1, 7, "unknown label 'nowhere'"),
    ("x: .data 1\n  x: .data 2", 2, 3, "label 'x' defined twice"),
    (".data 1\n.data 3 4$", 2, 9, "bad operand '4$'"),
    (".data 1 40000", 1, 9, "outside the 16-bit word range"),
    ("x: .data x+40000", 1, 10, "outside the 16-bit word range"),
    (".data 'ab'", 1, 7, "one character"),
    ('.string "abc', 1, 9, "unterminated string"),
    (".bogus 1", 1, 1, "unknown directive"),
    ("1 2 3 4", 1, 1, "2 or 3 operands"),
    ("out", 1, 1, "out takes one operand"),
    ("9bad: .data 1", 1, 1, "bad label name"),
    (".data 5 \"s\"", 1, 9, "only allowed after .string"),
])
def test_assembler_errors(src, line, column, words):
    with pytest.raises(HardwireError) as info:
        subleq_asm.assemble(src, file="prog.sqa")
    err = info.value
    assert (err.file, err.line, err.column) == ("prog.sqa", line, column)
    assert words in err.message
    assert str(err).startswith(f"prog.sqa:{line}:{column}: ")


def test_assembler_value_range_follows_bits():
    assert subleq_asm.assemble(".data 127 -128", bits=8) == [127, -128]
    with pytest.raises(HardwireError, match=r"8-bit word range \[-128, 127\]"):
        subleq_asm.assemble(".data 128", bits=8)


def test_assemble_missing_file(tmp_path):
    with pytest.raises(HardwireError, match="cannot read file"):
        subleq_asm.assemble_file(str(tmp_path / "none.sqa"))


# ---- image loader ---------------------------------------------------------------------------------

def test_parse_image_comments_and_padding():
    image = subleq_ref.parse_image("# header\n 1 -2 3 # trailing\n\n4", 8, 8)
    assert image == [1, -2, 3, 4]
    assert subleq_ref.run(image, mem=8, bits=8, max_steps=0).mem == [1, -2, 3, 4, 0, 0, 0, 0]


@pytest.mark.parametrize("src, mem, bits, line, column, words", [
    ("1 2\n 3 x4 5", 16, 8, 2, 4, "'x4' is not an integer"),
    ("1 2 3.5", 16, 8, 1, 5, "'3.5' is not an integer"),
    ("1\n\n  128", 16, 8, 3, 3, "value 128 is outside the 8-bit word range [-128, 127]"),
    ("-129", 16, 8, 1, 1, "value -129"),
    ("1 2 3\n4 5 6", 4, 8, 2, 3, "image has 6 words but memory holds only 4; raise --mem"),
])
def test_parse_image_errors(src, mem, bits, line, column, words):
    with pytest.raises(HardwireError) as info:
        subleq_ref.parse_image(src, mem, bits, file="img.sq")
    err = info.value
    assert (err.file, err.line, err.column) == ("img.sq", line, column)
    assert words in err.message


def test_load_image_file_errors(tmp_path):
    with pytest.raises(HardwireError, match="cannot read file: No such file or directory") as info:
        subleq_ref.load_image(str(tmp_path / "missing.sq"), 16, 8)
    assert info.value.file == str(tmp_path / "missing.sq")
    bad = tmp_path / "bad.sq"
    bad.write_bytes(b"1 2\n3 \xff 4\n")
    with pytest.raises(HardwireError, match="not UTF-8") as info:
        subleq_ref.load_image(str(bad), 16, 8)
    assert (info.value.line, info.value.column) == (2, 3)
    good = tmp_path / "good.sq"
    good.write_text("1 2 3 # comment\n")
    assert subleq_ref.load_image(str(good), 16, 8) == [1, 2, 3]


def test_run_rejects_oversized_image():
    with pytest.raises(HardwireError, match="raise --mem"):
        subleq_ref.run([0] * 9, mem=8, bits=8)


# ---- wrap -----------------------------------------------------------------------------------------

@given(st.integers(), st.integers(2, 40))
def test_wrap_properties(x, bits):
    lo, hi = subleq_ref.word_range(bits)
    y = subleq_ref.wrap(x, bits)
    assert lo <= y <= hi
    assert (y - x) % (2 ** bits) == 0
    assert subleq_ref.wrap(y, bits) == y


@given(st.integers(2, 40), st.data())
def test_wrap_is_identity_on_range(bits, data):
    lo, hi = subleq_ref.word_range(bits)
    x = data.draw(st.integers(lo, hi))
    assert subleq_ref.wrap(x, bits) == x
    assert subleq_ref.wrap(hi + 1, bits) == lo and subleq_ref.wrap(lo - 1, bits) == hi
