"""Words in generating programs: `latest`/`earliest` over a word `==` select, generation with `vocab word`, and the
bits of a sum with large coefficients (wire_words.reduced), each compiled and compared with the interpreter."""
import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.interpret import generate as interpret_generate
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.generate import generate
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings
from hypothesis import strategies as st

from hardwire.harness import compare

LATEST = """program latest_word
word 6
vocab {0, 1, 2, 3}
max_len 12
causal
cell = word(tokens) - word(indices % 3)
output last_same = latest(select(cell, cell, ==), indices)
output first_same = earliest(select(cell, cell, ==), tokens)
output last_other = latest(select(cell, word(tokens), ==), indices % 4)
"""

WALK = """program word_walk
word 8
vocab word
max_len 16
causal
generate next stop {100}
prev = aggregate(select(word(indices), word(indices) - 1, ==), tokens)
seen = latest(select(tokens, prev + 1, ==), indices % 3)
output next = if tokens > 40 then word(100) else tokens + prev + word(default(seen, 0)) + 1
"""


def test_latest_and_earliest_over_a_word_select_match_the_interpreter():
    prog = check_source(LATEST, "latest.hw")
    model = from_compiled(compile_program(prog), "cpu")
    assert compare(prog, model, samples=300)["mismatches"] == 0
    toks = [1, 2, 0, 1, 3, 2, 1, 0, 3, 3]
    got = model.run([toks])[0]
    cell = [t - i % 3 for i, t in enumerate(toks)]          # a plain-Python reference of the three heads
    assert got["last_same"] == list(range(len(toks)))        # a key always matches itself: the query's own index
    assert got["first_same"] == [toks[cell.index(c)] for c in cell]
    assert got["last_other"] == [next((k % 4 for k in range(q, -1, -1) if cell[k] == toks[q]), None)
                                 for q in range(len(toks))]
    assert any(v is None for v in got["last_other"]) and any(v is not None for v in got["last_other"])


def test_a_word_select_combined_with_another_is_refused_for_latest():
    src = LATEST.replace("latest(select(cell, cell, ==), indices)",
                         "latest(select(cell, cell, ==) & select(indices, indices, <), indices)")
    with pytest.raises(HardwireError, match="latest over a select on words combined with other selects"):
        check_source(src, "bad.hw")


@given(st.lists(st.integers(-128, 127), min_size=1, max_size=8))
@settings(max_examples=40)
def test_generation_with_word_tokens_matches_the_interpreter(prompt):
    prog = check_source(WALK, "walk.hw")
    model = _model(WALK)
    assert generate(model, [prompt])[0] == interpret_generate(prog, prompt)
    assert generate(model, [prompt], fast=True)[0] == generate(model, [prompt], fast=False)[0]


def test_word_generation_checks_its_tokens():
    with pytest.raises(HardwireError, match="stop token 300 is not a 8-bit word"):
        check_source(WALK.replace("stop {100}", "stop {300}"), "w.hw")
    text = ('program w\nword 8\nvocab word\nmax_len 4\ncausal\ngenerate next\ntable t { true -> "a" }\n'
            "output next = t[tokens == word(0)]\n")
    with pytest.raises(HardwireError, match="can be none, which is not a 8-bit word, so it cannot be the next token"):
        check_source(text, "w.hw")


BIG = """program big_fields
word 16
vocab word
max_len 4
g1 = tokens >= 2048
g2 = tokens >= 4096
g3 = tokens >= 6144
code = word(0) + g1 + g2 + g3
output field = tokens - 2048 * code
output shifted = tokens - 2048 * code + 3 * g2 - 5
"""


def test_large_coefficients_cost_units_for_the_bits_they_reach():
    """tokens - 2048 * (g1 + g2 + g3): the booleans add nothing to bits 0..10, so each bit needs a few steps,
    not 2^11 / 2^j intervals (before wire_words.reduced: 24,652 hidden units in the widest layer, now 88)."""
    prog = check_source(BIG, "big.hw")
    compiled = compile_program(prog)
    assert max(layer["d_mlp"] for layer in compiled.config["layers"]) < 1000
    assert compare(prog, from_compiled(compiled, "cpu"), samples=400)["mismatches"] == 0


_MODELS: dict = {}


def _model(src: str):
    if src not in _MODELS:
        _MODELS[src] = from_compiled(compile_program(check_source(src, "m.hw")), "cpu")
    return _MODELS[src]


WORD_VALUES = """program latest_word_values
word 8
vocab word
max_len 12
causal
odd = tokens < 0
key = if tokens < -1 then word(10) else if tokens > 9 then word(10) else tokens
query = tokens - 1
output last_neg = latest(select(odd, true, ==), tokens)
output first_neg = earliest(select(odd, true, ==), tokens * 2)
output held = if tokens < -3 then word(-3) else if tokens > 20 then word(20) else tokens
output last_at = latest(select(key, if query < 0 then word(11) else if query >= 9 then word(11) else query, ==),
                        tokens + 1)
"""


def test_latest_and_earliest_of_a_word_and_guarded_ranges_match_a_plain_reference():
    prog = check_source(WORD_VALUES, "word_values.hw")
    model = from_compiled(compile_program(prog), "cpu")
    assert compare(prog, model, samples=300)["mismatches"] == 0
    toks = [5, -7, 30, 4, -2, 6, 3, 127, -128, 10, 9]
    got = model.run([toks])[0]

    def w(x: int) -> int:   # words wrap at 8 bits
        return ((x + 128) & 255) - 128
    assert got["last_neg"] == [next((t for t in reversed(toks[:q + 1]) if t < 0), 0) for q in range(len(toks))]
    assert got["first_neg"] == [next((w(2 * t) for t in toks[:q + 1] if t < 0), 0) for q in range(len(toks))]
    assert got["held"] == [min(max(t, -3), 20) for t in toks]
    key = [t if -1 <= t <= 9 else 10 for t in toks]
    query = [w(t - 1) if 0 <= w(t - 1) < 9 else 11 for t in toks]
    want = [next((w(toks[k] + 1) for k in range(q, -1, -1) if key[k] == query[q]), 0) for q in range(len(toks))]
    assert got["last_at"] == want and any(v == 0 for v in want) and any(v != 0 for v in want)


def test_an_else_after_tests_of_its_own_value_has_a_known_range_and_needs_no_guard_block():
    """`if x < lo then .. else if x > hi then .. else x`: the tests exclude each other, so the mux is gated on
    them directly (the `else` where neither holds), and x there lies in [lo, hi]: a query word with few codes."""
    prog = check_source(WORD_VALUES, "word_values.hw")
    held = prog.outputs["held"]
    assert held.vrange == (-3, 20) and held.polarity == (True, "first", "none")
    sel = prog.outputs["last_at"].selector
    assert sel.keys.vrange == (-1, 10) and sel.queries.vrange == (0, 11)
    overlapping = check_source(WORD_VALUES.replace("tokens > 20", "tokens > -5"), "overlap.hw").outputs["held"]
    assert overlapping.polarity != (True, "first", "none") and overlapping.vrange is None
