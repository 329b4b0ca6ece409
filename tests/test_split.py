"""compiler/split.py: a count of smaller keys, where the key orders positions lexicographically by a pair of values,
is two counts (no one-hot key); the order is checked on every combination, and each model against the interpreter
and a plain sort."""
import random

from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.interpret import run
from hardwire.compiler.lower import walk
from hardwire.compiler.split import lexicographic, split_ranks
from hypothesis import given, settings
from hypothesis import strategies as st

import hardwire

SORT = """program t
vocab {1, 2, 3, 4}
max_len N
key = map((t, i) -> KEY, tokens, indices)
rank = width(select(key, key, <))
output sorted = aggregate(select(rank, indices, ==), tokens)
"""
LEX = ["t * 10 + i", "t + i / 10", "t * N + i", "i + t * 100", "i * 4 + t"]   # max_len <= 10: (t, i) or (i, t)
NOT_LEX = ["-t * N + i", "t * 10 + 9 - i"]   # injective (the checker's one-key proof), but a descending major or minor


def rank_key(text: str):
    prog = check_source(text)
    return next(s for s in walk(prog.roots()) if s.label == "key")


def sort_reference(text: str, xs: list) -> list:
    """The sort a key defines, stably by index, in plain Python (the program's own meaning, checked too)."""
    key = rank_key(text).fn
    order = sorted(range(len(xs)), key=lambda i: key(xs[i], i))
    return [xs[i] for i in order]


def check(text: str, rng: random.Random, samples: int = 16) -> None:
    prog = check_source(text)
    model = hardwire.compile_source(text, device="cpu")
    batch = [[rng.randint(1, 4) for _ in range(rng.randint(1, prog.max_len))] for _ in range(samples)]
    for xs, got in zip(batch, model(batch, batch=True)):
        want = run(prog, xs)["sorted"]
        assert got["outputs"]["sorted"] == want, (text, xs)
        if len({rank_key(text).fn(x, i) for i, x in enumerate(xs)}) == len(xs):   # distinct keys: a sort
            assert want == sort_reference(text, xs), (text, xs)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(LEX + NOT_LEX), st.integers(2, 9), st.integers(0, 2 ** 16))
def test_split_ranks_sort_as_the_interpreter_does(key, n, seed):
    """A lexicographic key is split (two widths, no one-hot key); any other keeps its one-hot select; either way
    the model gives the interpreter's outputs, and with distinct keys those are the key's stable sort."""
    text = SORT.replace("KEY", key).replace("N", str(n))
    split = any(s.label.endswith(".major") for s in walk(split_ranks(check_source(text)).roots()))
    assert split == (key in LEX), key
    check(text, random.Random(seed))


def test_the_order_is_checked_on_every_combination():
    """`t * 4 + i` is lexicographic while i < 4: at max_len 4, not at 5 (where 1 * 4 + 4 = 2 * 4 + 0)."""
    mean = SORT.replace("tokens)\n", "scalar(tokens))\n")   # a mean: no one-key proof, so ties compile too
    assert lexicographic(rank_key(mean.replace("KEY", "t * 4 + i").replace("N", "4"))) is not None
    assert lexicographic(rank_key(mean.replace("KEY", "t * 4 + i").replace("N", "5"))) is None
    major, minor = lexicographic(rank_key(SORT.replace("KEY", "i + t * 100").replace("N", "8")))
    assert (major.label, minor.label) == ("tokens", "indices")


def test_sort_has_no_one_hot_key():
    """programs/sort.hw at max_len 10: no `key=` dims (40 before), the rank two numbers, 3 layers as before."""
    m = hardwire.compile_file("programs/sort.hw", device="cpu")
    labels = m.compiled.labels
    assert not any(label.startswith("key=") for label in labels)
    assert {"rank", "rank.sq", "rank.major", "rank.minor"} <= set(labels)
    s = m.summary()
    assert (s["layers"], s["d_model"]) == (3, 23)
    with open("programs/sort.hw") as f:
        check(f.read(), random.Random(1))
