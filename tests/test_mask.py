"""compiler/mask.py: a program whose every selector looks back compiles with a causal mask, its prefix selects as
`true`; the facts it relies on are checked against every pair of positions, and each model against the
interpreter."""
import random

from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.sops import Indices, SelAnd, Select, SelNot, SelOr
from hardwire.compiler.interpret import run
from hardwire.compiler.mask import facts, mask_causal
from hypothesis import given, settings
from hypothesis import strategies as st

import hardwire

HEADER = 'program t\nvocab {"a", "b", "c"}\nmax_len 8\n'
FRAC = 'is_a = scalar(tokens == "a")\noutput y = aggregate(select(indices, indices, <=), is_a)\n'
PREDS = ["==", "!=", "<", "<=", ">", ">="]


def agrees(text: str, rng: random.Random, samples: int = 16) -> None:
    """The compiled model gives the interpreter's outputs on random inputs of every length."""
    prog = check_source(text)
    model = hardwire.compile_source(text, device="cpu")
    batch = [[rng.choice("abc") for _ in range(rng.randint(1, prog.max_len))] for _ in range(samples)]
    for xs, got in zip(batch, model(batch, batch=True)):
        want = run(prog, xs)
        assert {k: got["outputs"][k] for k in want} == want, (text, xs)


def size(text: str) -> dict:
    return hardwire.compile_source(text, device="cpu").compiled.summary()


def test_a_prefix_mean_compiles_causal_with_no_indices():
    """Tracr's frac_prevs as Tracr writes it (no `causal`): one head that reads nothing, as small as the causal
    program that says `true` under the mask."""
    prog = mask_causal(check_source(HEADER + FRAC))
    assert prog.causal and prog.outputs["y"].selector.pred == "true"
    hand = HEADER + "causal\n" + FRAC.replace("select(indices, indices, <=)", "select(indices, indices, true)")
    natural, written = size(HEADER + FRAC), size(hand)
    assert natural["d_model"] == written["d_model"] == 4
    assert natural["nonzero_params"] == written["nonzero_params"]
    assert check_source(HEADER + FRAC).causal is False   # the interpreter keeps the program as written
    agrees(HEADER + FRAC, random.Random(0))


def test_a_select_that_looks_ahead_keeps_the_program_unmasked():
    text = HEADER + FRAC + "output z = aggregate(select(indices, indices, >=), is_a)\n"
    prog = mask_causal(check_source(text))
    assert not prog.causal and prog.outputs["y"].selector.pred == "<="
    agrees(text, random.Random(1))


def test_length_is_no_prefix():
    text = HEADER + FRAC + "output n = length\n"
    assert not mask_causal(check_source(text)).causal
    agrees(text, random.Random(2))


def test_a_conjunct_is_dropped_and_a_strict_prefix_stays():
    """`select(indices, indices, <=) & select(tokens, tokens, ==)` is the token select under the mask; `<` holds on
    no key at its query, so it stays a select (it still looks back, so the program is masked)."""
    text = HEADER + ('output w = width(select(indices, indices, <=) & select(tokens, tokens, ==))\n'
                     'output s = aggregate(select(indices, indices, <), scalar(tokens == "b"))\n'
                     'output p = aggregate(select(indices, indices - 1, ==), tokens)\n')
    prog = mask_causal(check_source(text))
    assert prog.causal
    w = prog.outputs["w"].selector
    assert isinstance(w, Select) and w.pred == "==" and not isinstance(w.keys, Indices)
    assert prog.outputs["s"].selector.pred == "<" and prog.outputs["p"].selector.pred == "=="
    agrees(text, random.Random(3))


def test_programs_already_causal_lose_their_prefix_columns():
    """programs/frac_prevs.hw is `causal` and writes `select(indices, indices, <=)`: 36 -> 4 dims."""
    from pathlib import Path
    src = (Path(__file__).resolve().parent.parent / "programs" / "frac_prevs.hw").read_text()
    assert size(src)["d_model"] == 4


def test_a_loop_is_left_alone():
    text = ('program l\nword 4\nvocab word\nmax_len 4\nstate x = tokens\nloop until x > 3 {\n'
            '  p = aggregate(select(indices, indices, <=), scalar(x == word(1)))\n  x := x + 1\n}\noutput y = x\n')
    prog = check_source(text)
    assert mask_causal(prog) is prog


# ---- the facts, against every pair of positions --------------------------------------------------------------

def atoms(n: int):
    """Selects of positions: indices against indices plus a constant, under each predicate."""
    def atom(pred, shift):
        q = f"indices + {shift}" if shift >= 0 else f"indices - {-shift}"
        text = HEADER.replace("max_len 8", f"max_len {n}") + \
            f"output y = aggregate(select(indices, {q}, {pred}), scalar(tokens == \"a\"))\n"
        return check_source(text).outputs["y"].selector
    return st.builds(atom, st.sampled_from(PREDS), st.integers(-2, 2))


def selectors(n: int):
    return st.recursive(atoms(n), lambda inner: st.one_of(
        st.builds(SelNot, inner), st.builds(SelAnd, inner, inner), st.builds(SelOr, inner, inner)), max_leaves=4)


def holds(sel, k: int, q: int, pos) -> bool:
    """sel at key position k, query position q, from the atoms' own values (feature_value of each side)."""
    if isinstance(sel, Select):
        from hardwire.compiler.core.sops import atom_holds
        return atom_holds(sel, pos(sel.keys, k), pos(sel.queries, q))
    if isinstance(sel, SelNot):
        return not holds(sel.inner, k, q, pos)
    a, b = holds(sel.left, k, q, pos), holds(sel.right, k, q, pos)
    return (a and b) if isinstance(sel, SelAnd) else (a or b)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), selectors(n))))
def test_facts_match_every_pair(case):
    """`never` means no key after its query is selected and `always` that every one is, by brute force."""
    from hardwire.compiler.wire import feature_value
    n, sel = case
    pos = lambda s, i: feature_value(s, index=i)
    ahead = [holds(sel, k, q, pos) for q in range(n) for k in range(q + 1, n)]
    never, always = facts(sel, n, {})
    assert never == (not any(ahead))
    assert always == all(ahead)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["<=", "<", "=="]), st.integers(-2, 0), st.booleans()), min_size=1,
                max_size=3), st.integers(0, 2 ** 16))
def test_backward_programs_compile_to_the_interpreters_values(heads, seed):
    """Random programs of backward selects (prefix means, widths, previous-token reads, a token condition anded
    in): masked, and equal to the interpreter."""
    lines = ['is_a = scalar(tokens == "a")']
    for j, (pred, shift, with_tokens) in enumerate(heads):
        q = "indices" if shift == 0 else f"indices - {-shift}"
        sel = f"select(indices, {q}, {pred})" + (" & select(tokens, tokens, ==)" if with_tokens else "")
        lines.append(f"output m{j} = aggregate({sel}, is_a)" if pred != "==" else f"output m{j} = width({sel})")
    text = HEADER + "\n".join(lines) + "\n"
    prog = mask_causal(check_source(text))
    # each select looks back (k <= q + shift <= q); only `<=` at shift 0 holds on every key up to the query
    assert prog.causal == any(p == "<=" and s == 0 for p, s, _ in heads)
    agrees(text, random.Random(seed))
