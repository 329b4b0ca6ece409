"""compiler/cse.py: a value written twice compiles once; every model still gives the interpreter's outputs."""
import random

from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.cse import merge_common
from hypothesis import given, settings
from hypothesis import strategies as st

import hardwire
from tests.test_mask import agrees

HEADER = 'program t\nvocab {"a", "b", "c"}\nmax_len 8\n'
# expressions a program might write more than once, each usable as a one-hot (or scalar) value
POOL = ['indices + 1', 'map(t -> t == "a", tokens)', 'width(select(tokens, tokens, ==))',
        'aggregate(select(indices, indices - 1, ==), tokens)', 'aggregate(select(tokens, tokens, <), scalar(indices))',
        'indices % 3', 'map(t -> t != "b", tokens)', 'width(select(indices, indices, <=) & select(tokens, tokens, ==))']


def size(text: str) -> dict:
    s = hardwire.compile_source(text, device="cpu").compiled.summary()
    return {k: s[k] for k in ("layers", "heads", "d_model", "d_mlp", "nonzero_params")}


TWICE = HEADER + '''x = map(t -> t == "a", tokens)
y = map(t -> "a" == t, tokens)
p = indices + 1
q = indices + 1
m1 = aggregate(select(indices, p, ==), tokens)
m2 = aggregate(select(indices, q, ==), tokens)
c1 = width(select(tokens, tokens, ==))
c2 = width(select(tokens, tokens, ==))
output o1 = if x then m1 else m2
output o2 = if y then c1 else c2
'''
ONCE = HEADER + '''x = map(t -> t == "a", tokens)
p = indices + 1
m1 = aggregate(select(indices, p, ==), tokens)
c1 = width(select(tokens, tokens, ==))
output o1 = if x then m1 else m1
output o2 = if x then c1 else c1
'''


def test_written_twice_costs_what_written_once_costs():
    """Equal maps (also lambdas written differently: `t == "a"` and `"a" == t`), equal selects and equal heads
    are one each: two heads, not four; the lookup `if x then m1 else m2` reads (x, m), not (x, m, m)."""
    twice, once = size(TWICE), size(ONCE)
    assert twice == once and twice["heads"] == 2
    agrees(TWICE, random.Random(0))


def test_different_values_stay_apart():
    text = HEADER + ('a = map(t -> t == "a", tokens)\nb = map(t -> t == "b", tokens)\n'
                     'output x = width(select(tokens, tokens, ==) & select(a, a, ==))\n'
                     'output y = width(select(tokens, tokens, ==) & select(b, b, ==))\n')
    prog = merge_common(check_source(text))
    x, y = prog.outputs["x"].selector, prog.outputs["y"].selector
    assert x.left is y.left and x.right is not y.right   # the token select is one; the a and b selects two
    agrees(text, random.Random(1))


def test_two_outputs_of_one_value_share_it():
    text = HEADER + "output a = indices + 1\noutput b = indices + 1\n"
    prog = merge_common(check_source(text))
    assert prog.outputs["a"] is prog.outputs["b"]
    got = hardwire.compile_source(text, device="cpu")(["a", "b", "c"])["outputs"]
    assert got["a"] == got["b"] == [1, 2, 3]


def test_means_written_twice_fold_into_one_mean():
    """`opens - closes` with the prefix select written out in each mean: the selects are one object after cse, so
    encode.one_mean makes the output one mean, as when the selector is named once."""
    natural = HEADER + ('causal\nopens = aggregate(select(indices, indices, <=), scalar(tokens == "a"))\n'
                        'closes = aggregate(select(indices, indices, <=), scalar(tokens == "b"))\n'
                        'output balance = opens - closes\n')
    named = natural.replace("opens = aggregate(select(indices, indices, <=)", "prevs = select(indices, indices, <=)"
                            "\nopens = aggregate(prevs").replace("closes = aggregate(select(indices, indices, <=)",
                                                                 "closes = aggregate(prevs")
    assert size(natural) == size(named) and size(natural)["d_mlp"] == 0
    agrees(natural, random.Random(2))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=6), st.integers(0, 2 ** 16))
def test_random_repeats_cost_nothing(picks, seed):
    """A program that writes each picked expression anew costs what the one naming each distinct one once costs,
    and both give the interpreter's outputs."""
    repeated = HEADER + "".join(f"v{j} = {POOL[i]}\n" for j, i in enumerate(picks)) + \
        "".join(f"output o{j} = v{j}\n" for j in range(len(picks)))
    distinct = HEADER + "".join(f"w{i} = {POOL[i]}\n" for i in sorted(set(picks))) + \
        "".join(f"output o{j} = w{i}\n" for j, i in enumerate(picks))
    assert size(repeated) == size(distinct)
    agrees(repeated, random.Random(seed))
