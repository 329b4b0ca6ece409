"""Selectors that say what Tracr's say (issue 19): custom predicates `select(k, q, (a, b) -> body)`, `|` `&` `!` over
selects on any keys and queries (combined into one select, compiler/combine.py), and select on scalar values.

Every property compares three things on random inputs: the compiled weights, the interpreter, and a plain-Python
reference written here from the selection rule (q selects k when the predicate holds on (keys[k], queries[q]),
never on a none key or query, and in a causal program only for k <= q).
"""
from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.combine import PAIR_BUDGET
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings
from hypothesis import strategies as st

VOCAB = [0, 1, 2]
N = 5

# a key or query as the program writes it, its possible values and its value at each position (None: none), given
# the input and whether the program is causal (the next token is then never seen)
SIDES = {
    "tokens": (VOCAB, lambda xs, c: list(xs)),
    "indices": (list(range(N)), lambda xs, c: list(range(len(xs)))),
    "(tokens + indices) % 3": ([0, 1, 2], lambda xs, c: [(t + i) % 3 for i, t in enumerate(xs)]),
    "1": ([1], lambda xs, c: [1] * len(xs)),
    "aggregate(select(indices, indices + 1, ==), tokens)": (VOCAB, lambda xs, c: [None] * len(xs) if c else
                                                            list(xs[1:]) + [None]),
}


def mean(vals: list) -> Fraction | int:
    m = sum((Fraction(v) for v in vals), Fraction(0)) / len(vals) if vals else Fraction(0)
    return int(m) if m.denominator == 1 else m


def reference(rows: list[list[bool]], xs: list) -> dict:
    """The four readers of a selector, from its selection matrix rows[q][k]."""
    idx = range(len(xs))
    return {"w": [sum(r) for r in rows],
            "m": [mean([k for k in idx if r[k]]) for r in rows],
            "late": [max((k for k in idx if r[k]), default=None) for r in rows],
            "early": [next((xs[k] for k in idx if r[k]), None) for r in rows]}


READERS = "output w = width(s)\noutput m = aggregate(s, scalar(indices))\noutput late = latest(s, indices)\n" \
          "output early = earliest(s, tokens)\n"


def header(causal: bool) -> str:
    return f"program p\nvocab {{0, 1, 2}}\nmax_len {N}\n" + ("causal\n" if causal else "")


_MODELS: dict = {}


def compiled(src: str):
    if src not in _MODELS:
        prog = check_source(src, "p.hw")
        _MODELS[src] = prog, from_compiled(compile_program(prog), "cpu")
    return _MODELS[src]


def agree(src: str, xs: list, want: dict) -> None:
    prog, model = compiled(src)
    got = model.run([xs])[0]
    assert run(prog, xs) == want, f"interpreter on {xs}"
    assert got == want, f"weights on {xs}"


inputs = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=N)


# ---- custom predicates over random truth tables ----------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from(sorted(SIDES)), query=st.sampled_from(sorted(SIDES)), data=st.data(),
       negated=st.booleans(), causal=st.booleans(), batch=st.lists(inputs, min_size=4, max_size=4))
def test_a_random_truth_table_compiles_exactly(key, query, data, negated, causal, batch):
    """A predicate given as a table (Tracr's generated form): weights == interpreter == reference, causal or not,
    for width, a mean, latest and earliest; `!` over it selects where it is false, none keys included."""
    kvals, kfn = SIDES[key]
    qvals, qfn = SIDES[query]
    pairs = data.draw(st.sets(st.sampled_from(list(itertools.product(kvals, qvals)))))
    entries = ", ".join(f"({a}, {b}) -> true" for a, b in sorted(pairs))
    src = header(causal) + f"table pred {{ {entries} }}\nk = {key}\nq = {query}\n" \
        f"s = {'!' if negated else ''}select(k, q, (a, b) -> pred[a, b])\n" + READERS
    for xs in batch:
        ks, qs = kfn(xs, causal), qfn(xs, causal)
        rows = [[(not causal or k <= q) and (((ks[k], qs[q]) in pairs) != negated) for k in range(len(xs))]
                for q in range(len(xs))]
        agree(src, xs, reference(rows, xs))


BODIES = {  # a predicate's body over (a, b) = (key, query) and the same in Python
    "a == b + 1": lambda a, b: a == b + 1,
    "(a + b) % 3 == 0": lambda a, b: (a + b) % 3 == 0,
    "a <= 1": lambda a, b: a <= 1,
    "b == 2": lambda a, b: b == 2,
    "a * b > 1 or a == 0": lambda a, b: a * b > 1 or a == 0,
    "abs(a - b) == 1": lambda a, b: abs(a - b) == 1,
    "true": lambda a, b: True,
    "false": lambda a, b: False,
}


@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from(sorted(SIDES)), query=st.sampled_from(sorted(SIDES)),
       body=st.sampled_from(sorted(BODIES)), causal=st.booleans(), batch=st.lists(inputs, min_size=4, max_size=4))
def test_a_lambda_body_compiles_exactly(key, query, body, causal, batch):
    """Operators, params and literals in the body; a none key or query (the shifted tokens) selects nothing."""
    src = header(causal) + f"k = {key}\nq = {query}\ns = select(k, q, (a, b) -> {body})\n" + READERS
    fn = BODIES[body]
    for xs in batch:
        ks, qs = SIDES[key][1](xs, causal), SIDES[query][1](xs, causal)
        rows = [[(not causal or k <= q) and ks[k] is not None and qs[q] is not None and fn(ks[k], qs[q])
                 for k in range(len(xs))] for q in range(len(xs))]
        agree(src, xs, reference(rows, xs))


# ---- | & ! over selects on any keys and queries ----------------------------------------------------------------
ATOMS = {  # a select and its meaning on (key token, key index, query token, query index)
    "select(tokens, tokens, ==)": lambda kt, ki, qt, qi: kt == qt,
    "select(indices, indices, <)": lambda kt, ki, qt, qi: ki < qi,
    "select(tokens, indices, (a, b) -> a + b == 3)": lambda kt, ki, qt, qi: kt + qi == 3,
    "select(indices, tokens, >=)": lambda kt, ki, qt, qi: ki >= qt,
    "select(tokens, 1, ==)": lambda kt, ki, qt, qi: kt == 1,
    "select(indices, indices, (k, q) -> q == k + 2)": lambda kt, ki, qt, qi: qi == ki + 2,
}


def trees(depth: int):
    leaf = st.sampled_from(sorted(ATOMS)).map(lambda a: (a, ATOMS[a]))
    if depth == 0:
        return leaf

    def node(parts):
        op, (ta, fa), (tb, fb) = parts
        if op == "!":
            return f"!({ta})", lambda *v: not fa(*v)
        if op == "&":
            return f"({ta}) & ({tb})", lambda *v: fa(*v) and fb(*v)
        return f"({ta}) | ({tb})", lambda *v: fa(*v) or fb(*v)
    sub = trees(depth - 1)
    return st.one_of(leaf, st.tuples(st.sampled_from("!&|"), sub, sub).map(node))


@settings(max_examples=30, deadline=None)
@given(tree=trees(3), causal=st.booleans(), batch=st.lists(inputs, min_size=4, max_size=4))
def test_any_combination_of_selects_compiles_exactly(tree, causal, batch):
    """A `|` across keys or queries, written out or hidden in `!(a & b)`, is one combined select."""
    text, fn = tree
    src = header(causal) + f"s = {text}\n" + READERS
    for xs in batch:
        rows = [[(not causal or k <= q) and bool(fn(xs[k], k, xs[q], q)) for k in range(len(xs))]
                for q in range(len(xs))]
        agree(src, xs, reference(rows, xs))


def test_a_combination_costs_one_head():
    prog, model = compiled(header(False) + "s = select(tokens, tokens, ==) | select(indices, indices, <)\n"
                           "output w = width(s)\n")
    assert compile_program(prog).summary()["heads"] == 1


def test_only_the_or_is_combined():
    """The terms of an `&` that sum as they are stay apart: the table multiplies the `|`'s value sets alone."""
    base = "s = (select(tokens, tokens, ==) | select(indices, indices, <)) & select(tokens, indices, (a, b) -> a <= b)"
    prog = check_source(header(False) + base + "\noutput w = width(s)\n")
    alone = check_source(header(False) + "s = select(tokens, tokens, ==) | select(indices, indices, <)\n"
                         "output w = width(s)\n")
    with_and, without = compile_program(prog).summary(), compile_program(alone).summary()
    assert with_and["d_model"] == without["d_model"] and with_and["heads"] == 1


# ---- the three Tracr library selectors ---------------------------------------------------------------------------
TRACR = header(False).replace("vocab {0, 1, 2}", 'vocab {"a", "b", "c"}').replace(f"max_len {N}", "max_len 8")


def test_tracr_shift_by():
    """shift_by(2, tokens): Select(indices, indices, lambda k, q: q == k + 2), a one-hot aggregate (at most one key
    value per query value, over keys that differ everywhere)."""
    prog, model = compiled(TRACR + "output shifted = aggregate(select(indices, indices, (k, q) -> q == k + 2), "
                                   "tokens)\n")
    rng = random.Random(1)
    for _ in range(40):
        xs = [rng.choice("abc") for _ in range(rng.randint(1, 8))]
        want = {"shifted": [None, None, *xs[:-2]][:len(xs)]}
        assert run(prog, xs) == want and model.run([xs])[0] == want


def test_tracr_make_count():
    """make_count(tokens, "a"): SelectorWidth(Select(tokens, tokens, lambda k, q: k == "a")), one score column."""
    prog, model = compiled(TRACR + 'output count = width(select(tokens, tokens, (k, q) -> k == "a"))\n')
    for xs in (["a"], ["b", "a", "a"], ["c", "b", "c", "c", "b", "a", "a", "c"]):
        want = {"count": [xs.count("a")] * len(xs)}
        assert run(prog, xs) == want and model.run([xs])[0] == want


def test_tracr_count_less_freq():
    """count_less_freq(2)'s select on the histogram: Select(hist, hist, lambda x, y: x <= 2)."""
    prog, model = compiled(TRACR + "hist = width(select(tokens, tokens, ==))\n"
                                   "output n = width(select(hist, hist, (x, y) -> x <= 2))\n")
    rng = random.Random(2)
    for _ in range(40):
        xs = [rng.choice("abc") for _ in range(rng.randint(1, 8))]
        want = {"n": [sum(xs.count(t) <= 2 for t in xs)] * len(xs)}
        assert run(prog, xs) == want and model.run([xs])[0] == want


def test_a_predicate_given_as_a_table():
    """The generated form: `pred3[a, b]` with a missing key (none) false."""
    prog, model = compiled("program p\nvocab {0, 1, 2}\nmax_len 6\n"
                           "table pred3 { (0, 1) -> true, (1, 2) -> true }\n"
                           "output w = width(select(tokens, tokens, (a, b) -> pred3[a, b]))\n")
    for xs in ([0, 1, 2], [2, 2, 1, 0, 0, 1], [1]):
        want = {"w": [sum((k, q) in {(0, 1), (1, 2)} for k in xs) for q in xs]}
        assert run(prog, xs) == want and model.run([xs])[0] == want


# ---- sizes: no product grid for a predicate of one side ---------------------------------------------------------
def score_columns(src: str) -> int:
    """The query-key width of the one head of src: its score columns (one is BOS's)."""
    model = compile_program(check_source(src))
    [layer] = [x for x in model.config["layers"] if x["heads"]]
    assert layer["heads"] == 1
    return layer["d_head"]


@pytest.mark.parametrize("body", ['k == "a"', 'q == "b"', 'k != "c"', "true", 'k == "a" and q != "a"'])
def test_a_predicate_of_one_side_is_one_column(body):
    """A key-only predicate (Tracr's `lambda x, y: x <= n`) or a query-only one costs one score column beside
    BOS's, whatever the value sets; so does one that is a product of the two (one rectangle of the table)."""
    src = 'program p\nvocab {"a", "b", "c", "d", "e", "f"}\nmax_len 12\n' \
          f"output w = width(select(tokens, tokens, (k, q) -> {body}))\n"
    assert score_columns(src) == 2


def test_equal_rows_share_a_column():
    """q == k + 2 over indices: one column per key value that some query selects (max_len - 2), plus BOS."""
    assert score_columns("program p\nvocab {0}\nmax_len 9\n"
                         "output w = width(select(indices, indices, (k, q) -> q == k + 2))\n") == 7 + 1


# ---- select on scalar values --------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(pred=st.sampled_from(["<", "<=", "==", "!=", ">", "(a, b) -> a + b == 2"]), causal=st.booleans(),
       batch=st.lists(inputs, min_size=4, max_size=4))
def test_select_on_scalars(pred, causal, batch):
    """A scalar key or query (here a mean and a linear form) is made one-hot for the head."""
    fn = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
          ">": lambda a, b: a > b, "(a, b) -> a + b == 2": lambda a, b: a + b == 2}[pred]
    src = header(causal) + "x = scalar(tokens)\nhalf = aggregate(select(indices, indices, <=), x) / 2\n" \
        f"s = select(x - 1, half, {pred})\n" + READERS
    for xs in batch:
        keys = [t - 1 for t in xs]
        halves = [mean([xs[k] for k in range(q + 1)]) / 2 for q in range(len(xs))]
        rows = [[(not causal or k <= q) and bool(fn(keys[k], halves[q])) for k in range(len(xs))]
                for q in range(len(xs))]
        agree(src, xs, reference(rows, xs))


# ---- the one-hot aggregate proof and the refusals -------------------------------------------------------------------
def test_one_key_per_query_is_needed_for_a_onehot_aggregate():
    with pytest.raises(HardwireError, match="aggregate of a one-hot value must select at most one position"):
        check_source(TRACR + "output o = aggregate(select(indices, indices, (k, q) -> k == q or k == q + 1), "
                             "tokens)\n")
    with pytest.raises(HardwireError, match="aggregate of a one-hot value must select at most one position"):
        check_source(TRACR + "output o = aggregate(select(tokens, indices, (k, q) -> q == 0), tokens)\n")
    check_source(TRACR + "output o = aggregate(select(indices, indices, (k, q) -> k + q == 7), tokens)\n")


def test_an_or_over_the_budget_names_the_selector_and_the_sizes():
    src = ("program p\nvocab {1, 2, 3}\nmax_len 300\n"
           "output o = width(select(indices, indices, ==) | select(tokens, tokens, <))\n")
    with pytest.raises(HardwireError) as e:
        compile_program(check_source(src, "t.hw"))
    err = e.value
    assert (err.file, err.line, err.column) == ("t.hw", 4, 18)
    assert "indices (300 values) x tokens (3 values) = 900 values" in err.message
    assert f"810,000 pairs, over the budget of {PAIR_BUDGET:,}" in err.message


def test_heads_name_a_combined_selector_as_written():
    """The combined select stands for the selector as written: the API's heads (and explain) show that."""
    import hardwire
    model = hardwire.compile_source(header(False) + "s = select(tokens, tokens, ==) | select(indices, indices, <)\n"
                                    "output w = width(s)\noutput c = width(select(tokens, indices, (a, b) -> a < b))\n")
    assert sorted(h.selector for h in model.heads) == [
        "select(tokens, indices, (a, b) -> a < b)", "select(tokens, tokens, ==) | select(indices, indices, <)"]


def test_explain_says_how_a_custom_and_a_combined_select_score(tmp_path):
    """`hardwire explain` runs on both kinds and says what their heads compute (a truth table, a combined one)."""
    import html

    from hardwire.cli.main import main
    src = tmp_path / "p.hw"
    src.write_text(header(False) + "output c = width(select(tokens, tokens, (k, q) -> k == q + 1))\n"
                   "output o = width(select(tokens, tokens, ==) | select(indices, indices, <))\n")
    assert main(["explain", str(src), "--input", "0 1 2", "-o", str(tmp_path / "page")]) == 0
    text = html.unescape((tmp_path / "page" / "index.html").read_text(encoding="utf-8"))
    assert "(k, q) -> k == q + 1</code> is spelled out as its truth table" in text
    assert "one select whose key is its keys as one tuple value" in text
