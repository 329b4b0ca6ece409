"""Functions, folds, compile-time lists and ranges (issue 19): Tracr's library programs written once in .hw with `def`,
each equal to a plain-Python reference of Tracr's semantics, through the interpreter and the compiled weights; the
expansion is a macro (the same weights as the program written out by hand); ranges are their integers.
"""
from __future__ import annotations

from fractions import Fraction
from functools import cache

import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.interpret import run
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import given
from hypothesis import strategies as st

# Tracr's lib.py, once: shift_by, make_frac_prevs, make_pair_balance, make_shuffle_dyck, detect_pattern
LIBRARY = """
def shift_by(x, k) = if k == 0 then x else aggregate(select(indices, indices - k, ==), x)
def frac_prevs(b) = aggregate(select(indices, indices, <=), scalar(b))
def pair_balance(o, c) = frac_prevs(tokens == o) - frac_prevs(tokens == c)
def shuffle_dyck(pairs) =
    aggregate(select(indices, length - 1, ==), all(pair_balance(p[0], p[1]) == 0 for p in pairs))
    and aggregate(select(indices, indices, true), scalar(any(pair_balance(p[0], p[1]) < 0 for p in pairs))) == 0
def detect_pattern(x, pattern) = all(shift_by(x == c, len(pattern) - 1 - i) for i, c in enumerate(pattern))
"""
PAIRS = [("(", ")"), ("{", "}"), ("[", "]")]
MAX_LEN = 6


def program(vocab: list[str], output: str, header: str = "") -> str:
    """A program: the header, the library, one output (the library's text is the same in every program)."""
    tokens = ", ".join(f'"{v}"' for v in vocab)
    return f"program lib\n{header}vocab {{{tokens}}}\nmax_len {MAX_LEN}\n{LIBRARY}output y = {output}\n"


@cache
def compiled(src: str):
    prog = check_source(src, "lib.hw")
    return prog, from_compiled(compile_program(prog), "cpu")


# ---- plain-Python references of Tracr's semantics (rasp.evaluate on these programs) ----------------------------
def ref_shift_by(xs: list, k: int) -> list:
    return [xs[i - k] if i >= k else None for i in range(len(xs))]


def ref_frac_prevs(bools: list) -> list:
    return [Fraction(sum(bools[:i + 1]), i + 1) for i in range(len(bools))]


def ref_pair_balance(xs: list, o: str, c: str) -> list:
    opens, closes = ref_frac_prevs([x == o for x in xs]), ref_frac_prevs([x == c for x in xs])
    return [a - b for a, b in zip(opens, closes)]


def ref_shuffle_dyck(xs: list, pairs: list) -> list:
    balances = [ref_pair_balance(xs, o, c) for o, c in pairs]
    any_negative = [any(b[i] < 0 for b in balances) for i in range(len(xs))]
    has_neg = Fraction(sum(any_negative), len(xs))
    last_zero = all(b[-1] == 0 for b in balances)
    return [last_zero and not has_neg] * len(xs)


def ref_detect_pattern(xs: list, pattern: str) -> list:
    n = len(pattern)
    return [None if i < n - 1 else all(xs[i - n + 1 + j] == pattern[j] for j in range(n)) for i in range(len(xs))]


def agrees(src: str, reference, vocab: list):
    """The property: on random inputs, the model equals the interpreter, which equals the reference."""
    @given(st.lists(st.lists(st.sampled_from(vocab), min_size=1, max_size=MAX_LEN), min_size=1, max_size=6))
    def prop(batch):
        prog, model = compiled(src)
        for xs, got in zip(batch, model.run(batch)):
            want = run(prog, xs)
            assert got == want
            assert want["y"] == reference(xs), xs
    prop()


@pytest.mark.parametrize("k", [0, 1, 2])
def test_shift_by(k):
    vocab = ["a", "b", "c"]
    agrees(program(vocab, f"shift_by(tokens, {k})"), lambda xs: ref_shift_by(xs, k), vocab)


def test_frac_prevs():
    vocab = ["x", "y"]
    agrees(program(vocab, 'frac_prevs(tokens == "x")'), lambda xs: ref_frac_prevs([x == "x" for x in xs]), vocab)


def test_pair_balance():
    vocab = ["(", ")", "x"]
    agrees(program(vocab, 'pair_balance("(", ")")'), lambda xs: ref_pair_balance(xs, "(", ")"), vocab)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_shuffle_dyck_one_function_any_number_of_pairs(n):
    """make_shuffle_dyck(pairs): one function, its pairs a list param; 1, 2 and 3 pairs."""
    pairs = PAIRS[:n]
    vocab = [t for p in pairs for t in p] + ["x"]
    listed = ", ".join(f'("{o}", "{c}")' for o, c in pairs)
    src = program(vocab, "shuffle_dyck(pairs)", f"param pairs = [{listed}]\n")
    agrees(src, lambda xs: ref_shuffle_dyck(xs, pairs), vocab)
    prog, _ = compiled(src)
    # each pair's two means once, shared by all(...) and any(...): 2n heads, + has_neg and last_zero (the value at
    # length - 1 is a `latest` head: no length head)
    assert compile_program(prog).summary()["heads"] == 2 * n + 2


@pytest.mark.parametrize("pattern", ["abc", "a", "ab", "aba"])
def test_detect_pattern(pattern):
    vocab = ["a", "b", "c"]
    agrees(program(vocab, f'detect_pattern(tokens, "{pattern}")'), lambda xs: ref_detect_pattern(xs, pattern), vocab)


def test_detect_pattern_takes_a_string_param():
    vocab = ["a", "b", "c"]
    src = program(vocab, "detect_pattern(tokens, pattern)", 'param pattern = "abc"\n')
    agrees(src, lambda xs: ref_detect_pattern(xs, "abc"), vocab)


def sizes(src: str) -> dict:
    summary = compile_program(check_source(src, "x.hw")).summary()
    return {k: v for k, v in summary.items() if k != "program"}


def test_a_function_is_a_macro_the_same_model_as_written_out():
    """shuffle_dyck over 2 pairs with the library, and by hand as Tracr's code builds it: the same layers, heads,
    widths and weights (non-zero ones too); the residual dimensions differ only in order and names."""
    header = 'program d\nvocab {"(", ")", "{", "}"}\nmax_len 6\n'
    by_def = header + LIBRARY + 'output y = shuffle_dyck([("(", ")"), ("{", "}")])\n'
    by_hand = header + """
prevs = select(indices, indices, <=)
b1 = aggregate(prevs, scalar(tokens == "(")) - aggregate(prevs, scalar(tokens == ")"))
b2 = aggregate(prevs, scalar(tokens == "{")) - aggregate(prevs, scalar(tokens == "}"))
last_zero = aggregate(select(indices, length - 1, ==), (b1 == 0) and (b2 == 0))
has_neg = aggregate(select(indices, indices, true), scalar((b1 < 0) or (b2 < 0)))
output y = last_zero and has_neg == 0
"""
    assert sizes(by_def) == sizes(by_hand)


@given(st.lists(st.integers(-3, 3), max_size=5), st.integers(0, 2))
def test_sum_any_all_unroll_over_lists(items, k):
    """sum/any/all over a random list literal equal Python's, on every input (interpreter and weights)."""
    listed = ", ".join(map(str, items))
    src = (f"program f\nvocab {{0, 1, 2}}\nmax_len 3\nparam k = {k}\n"
           f"def scaled(x, c) = x * c + k\n"
           f"output s = sum(scaled(tokens, c) for c in [{listed}])\n"
           f"output a = any(tokens == c for c in [{listed}])\n"
           f"output e = all(tokens != c for i, c in enumerate([{listed}]))\n"
           f"output n = indices + len([{listed}])\n")
    prog = check_source(src, "f.hw")
    model = from_compiled(compile_program(prog), "cpu")
    batch = [[0], [1, 2], [2, 0, 1]]
    for xs, got in zip(batch, model.run(batch)):
        assert got == run(prog, xs)
        assert got["s"] == [sum(x * c + k for c in items) for x in xs]
        assert got["a"] == [x in items for x in xs]
        assert got["e"] == [x not in items for x in xs]
        assert got["n"] == [i + len(items) for i in range(len(xs))]


@given(st.integers(0, 6), st.integers(0, 4), st.sampled_from(["", ", 20", ', "x"']))
def test_vocab_ranges_are_their_integers(lo, span, extra):
    """{lo..hi} (ends as params and arithmetic) is the same vocabulary as its integers written out."""
    ranged = check_source(f"program r\nparam n = {lo}\nvocab {{n..n + {span}{extra}}}\nmax_len 3\noutput o = tokens\n")
    written = ", ".join(str(v) for v in range(lo, lo + span + 1))
    plain = check_source(f"program r\nvocab {{{written}{extra}}}\nmax_len 3\noutput o = tokens\n")
    assert ranged.vocab == plain.vocab


def test_ranges_in_state_sets_and_stop_sets():
    """A register's set and generate's stop set take ranges too."""
    prog = check_source("program r\nparam k = 3\nvocab {0..k}\nmax_len 4\nstate q in {0..k + 1} = 0\n"
                        "loop until q == k + 1 { q := min(q + 1, k + 1) }\noutput o = q\n")
    assert prog.loop.registers[0].values == (0, 1, 2, 3, 4)
    assert run(prog, [0, 3, 1]) == {"o": [4, 4, 4]}
    gen = check_source("program g\nvocab {0..3}\nmax_len 4\ncausal\ngenerate nxt stop {2..3}\noutput nxt = tokens\n")
    assert gen.stop == (2, 3)


def test_a_list_param_is_fixed_in_the_source():
    """--param sets integers; a list param says so, at its line."""
    src = program(["(", ")"], "shuffle_dyck(pairs)", 'param pairs = [("(", ")")]\n')
    with pytest.raises(HardwireError) as e:
        check_source(src, "lib.hw", {"pairs": 2})
    assert (e.value.line, e.value.column) == (2, 7)
    assert "pairs is a list param, fixed in the program's source; --param sets integer params only" in str(e.value)


def test_explain_names_the_body_position():
    """A value made inside a function carries the place in the body that made it (what explain and compile show)."""
    src = program(["a", "b", "c"], "shift_by(tokens, 1)")
    prog, _ = compiled(src)
    line = next(i for i, t in enumerate(src.split("\n"), 1) if t.startswith("def shift_by"))
    out = prog.outputs["y"]
    assert (out.line, out.column) == (line, src.split("\n")[line - 1].index("aggregate") + 1)


def test_lambdas_in_bodies_and_calls_in_lambdas():
    """A lambda in a body sees the function's parameters (also when the weights are built, after the expansion),
    a call in a lambda runs on its plain values, and a selector and a table pass as arguments."""
    src = """program lam
vocab {0, 1, 2, 3}
max_len 5
table half { 0 -> 0, 1 -> 0, 2 -> 1, 3 -> 1 }
def addk(x, k) = map(v -> v + k, x)
def twice(a) = a * 2
def pick(sel, x) = aggregate(sel, x)
def look(t, x) = t[x]
output a = addk(tokens, 3)
output b = map(v -> twice(v) + 1, tokens)
output c = pick(select(indices, indices - 1, ==), tokens)
output d = look(half, tokens)
"""
    prog = check_source(src, "lam.hw")
    model = from_compiled(compile_program(prog), "cpu")
    batch = [[0, 1, 2, 3], [3], [2, 2, 0, 1, 3]]
    for xs, got in zip(batch, model.run(batch)):
        assert got == run(prog, xs)
        assert got == {"a": [x + 3 for x in xs], "b": [2 * x + 1 for x in xs],
                       "c": [None] + xs[:-1], "d": [x // 2 for x in xs]}


def test_require_reads_list_params():
    src = ('program r\nparam pairs = [("(", ")")]\nrequire len(pairs) >= 2, "two pairs at least"\n'
           'vocab {"(", ")"}\nmax_len 4\noutput o = tokens\n')
    with pytest.raises(HardwireError) as e:
        check_source(src, "r.hw")
    assert str(e.value) == ('r.hw:3:1: this program requires len(pairs) >= 2, and here pairs = [("(", ")")]: '
                            "two pairs at least")


def test_the_cli_refuses_an_error_in_a_body_in_one_line(tmp_path, capsys, monkeypatch):
    """`hardwire compile`: exit 2, one line naming the body's place and the call, no file, no traceback."""
    from hardwire.cli.main import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.hw").write_text("program f\nvocab {1, 2}\nmax_len 4\ndef inv(x) = 1 / x\n"
                                   "output o = inv(tokens - 1)\n")
    assert main(["compile", "f.hw", "-o", "f.safetensors"]) == 2
    out, err = capsys.readouterr()
    assert err == ("hardwire: error: f.hw:4:14: `1 / x` fails where x is 0: it divides by zero "
                   "(in inv(...) called at 5:12)\n")
    assert out == "" and not (tmp_path / "f.safetensors").exists()


def test_a_constant_condition_checks_only_its_branch():
    """`if k == 0 then x else x / k` at k = 0 is x: the branch not taken is not checked (no division by zero)."""
    src = ("program safe\nvocab {1, 2, 4}\nmax_len 3\ndef safe(x, k) = if k == 0 then x else x / k\n"
           "output a = safe(tokens, 0)\noutput b = safe(tokens, 2)\n")
    prog = check_source(src, "safe.hw")
    model = from_compiled(compile_program(prog), "cpu")
    for xs, got in zip([[1, 4], [2]], model.run([[1, 4], [2]])):
        assert got == run(prog, xs) == {"a": xs, "b": [Fraction(x, 2) for x in xs]}
