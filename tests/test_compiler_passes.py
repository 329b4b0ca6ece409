"""Compiler passes: schedule depth, layout labels, fusion, value sets, checker rejections."""
import networkx as nx
import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.fuse import fuse_maps
from hardwire.compiler.interpret import run
from hardwire.compiler.lower import ATTN, EMBED, lower, schedule
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.model import from_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_programs import programs, sample_batch

HEADER = 'program t\nvocab {0, 1, 2}\nmax_len 6\n'


def chain(ops: list[str]) -> str:
    """A random pipeline of maps, aggregates and widths, each step reading the last."""
    lines, prev = [], "tokens"
    for i, op in enumerate(ops):
        name = f"v{i}"
        if op == "map":
            lines.append(f"{name} = ({prev} + {i}) % 3")
        elif op == "width":
            lines.append(f"{name} = width(select({prev}, {prev}, <=)) % 3")
        elif op == "flip":
            lines.append(f"{name} = aggregate(select(indices, length - indices - 1, ==), {prev})")
        else:
            lines.append(f"{name} = {prev} == 1")
        prev = name
    return HEADER + "\n".join(lines) + f"\noutput out = {prev}\n"


@given(st.lists(st.sampled_from(["map", "width", "flip", "eq"]), min_size=1, max_size=5),
       st.lists(st.integers(0, 2), min_size=1, max_size=6))
def test_random_pipelines_compile_exactly(ops, xs):
    prog = check_source(chain(ops))
    model = from_compiled(compile_program(prog), "cpu")
    got = model.run([xs])[0]
    assert got == run(prog, xs)


@given(st.lists(st.sampled_from(["map", "width", "flip", "eq"]), min_size=1, max_size=5))
def test_schedule_respects_dependencies_and_is_no_deeper_than_needed(ops):
    g = lower(fuse_maps(check_source(chain(ops))))
    when = schedule(g)
    for a, b in g.edges:
        assert when[a] < when[b]
    for b, t in when.items():
        assert t == -1 if b.kind == EMBED else t % 2 == (0 if b.kind == ATTN else 1)
    # depth bound: every block sits right after its latest input (as soon as possible)
    for b in nx.topological_sort(g):
        if b.kind != EMBED:
            earliest = max((when[p] for p in g.predecessors(b)), default=-1) + 1
            assert when[b] - earliest <= 1


def test_layout_labels_name_every_dimension():
    # a width that a select reads stays one-hot (one dim per count); the output-only one is a scalar
    m = compile_program(check_source(HEADER + "w = width(select(tokens, tokens, ==))\n"
                                     "output y = aggregate(select(indices, w, ==), tokens)\n"
                                     "output n = width(select(tokens, tokens, <))\n"))
    assert m.labels[:2] == ["bos", "not_bos"] and len(m.labels) == m.config["d_model"]
    assert "tokens=2" in m.labels and "w=6" in m.labels and len(set(m.labels)) == len(m.labels)
    assert "n" in m.labels and not any(label.startswith("n=") for label in m.labels)


def test_output_only_width_is_a_scalar_of_the_same_values():
    """encode.choose_encodings: one dim instead of max_len + 1, the same decoded counts as the interpreter."""
    src = HEADER + "output y = width(select(tokens, tokens, ==))\n"
    m = compile_program(check_source(src))
    assert m.config["d_model"] == 2 + 3 + 2  # bos, not_bos; tokens; y.frac and y
    t = from_compiled(m, "cpu")
    for xs in ([0], [0, 1, 0, 2, 2, 2], [1, 1, 1, 1, 1, 1]):
        want = run(check_source(src), xs)["y"]
        assert t.run([xs])[0]["y"] == want and all(type(v) is int for v in want)


def test_fusion_makes_one_mlp_of_a_map_chain():
    src = HEADER + "a = width(select(tokens, tokens, ==))\nb = a + 1\nc = b % 2\noutput y = c == 0\n"
    m = compile_program(check_source(src))
    # layer 0: the width head and its MLP; layer 1: b, c and y fused into one lookup
    assert m.config["n_layers"] == 2 and m.config["layers"][1]["heads"] == 0



def test_fusion_folds_part_of_a_map_when_all_of_it_would_read_a_scalar():
    """dyck2's `balanced = (dipped == 0) and (bal_round == 0) and (bal_square == 0)`: the inner `and` folds into
    the outer one; `bal_square == 0` does not (the lookup would read the scalar `bal_square`). One lookup
    over three one-hot booleans, four layers, where folding all or nothing gave five."""
    from pathlib import Path
    src = (Path(__file__).resolve().parents[1] / "programs" / "dyck2.hw").read_text()
    fused = fuse_maps(check_source(src))
    balanced = fused.outputs["balanced"]
    assert [x.label for x in balanced.inputs] == ["_==(dipped, 0)", "_==(bal_round, 0)", "_==(bal_square, 0)"]
    assert compile_program(check_source(src)).config["n_layers"] == 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.data())
def test_fusion_keeps_meaning_and_never_deepens(fp, data):
    """On random programs: the fused program computes what the program does (interpreter on both), and its
    schedule is no deeper."""
    try:
        prog = check_source(fp.source, "<fuzz>")
    except HardwireError:
        return
    fused = fuse_maps(prog)
    for x in sample_batch(prog, data):
        assert run(fused, x) == run(prog, x)
    depth = lambda p: max(schedule(lower(p)).values(), default=0)   # noqa: E731
    assert depth(fused) <= depth(prog)

@pytest.mark.parametrize("src,needle", [
    ("output y = aggregate(select(tokens, tokens, ==), tokens)\n", "at most one position"),
    ("output y = tokens // 0\n", "fails where tokens is 0: it divides by zero"),
    ("output y = undefined\n", "unknown name"),
    ("x = 1\nx = 2\noutput y = x\n", "defined twice"),
    ("table t { 0 -> 1, 0 -> 2 }\noutput y = t[tokens]\n", "twice"),
    ("output y = select(tokens, tokens, ==)\n", "not a selector"),
])
def test_checker_rejects_with_a_place(src, needle):
    with pytest.raises(HardwireError) as e:
        check_source(HEADER + src, "t.hw")
    assert needle in str(e.value) and str(e.value).startswith("t.hw:")


def test_value_sets_are_exact_for_means():
    prog = check_source('program t\nvocab {0, 1}\nmax_len 3\ncausal\n'
                        'output m = aggregate(select(indices, indices, <=), scalar(tokens))\n')
    from fractions import Fraction as F
    assert set(prog.outputs["m"].values) == {0, 1, F(1, 2), F(1, 3), F(2, 3)}


@pytest.mark.parametrize("sel", ["select(tokens, tokens, true) & select(indices, indices, <)",
                                 "!select(tokens, tokens, true)",
                                 "select(tokens, tokens, true) | select(tokens, tokens, ==)",
                                 "select(tokens, indices, true) | select(indices, tokens, true)",
                                 "select(tokens, tokens, true)"])
def test_a_true_select_reads_nothing_where_it_is_a_term_and_everything_elsewhere(sel):
    """A `true` conjunct is one column on not_bos (lower.read_atoms skips its keys and queries); inside `!` or
    `|` its keys and queries are read as before. Either way the weights give the interpreter's widths."""
    import random
    src = HEADER + f"output w = width({sel})\n"
    prog = check_source(src)
    t = from_compiled(compile_program(prog), "cpu")
    rng = random.Random(7)
    for _ in range(20):
        xs = [rng.choice([0, 1, 2]) for _ in range(rng.randint(1, 6))]
        assert t.run([xs])[0]["w"] == run(prog, xs)["w"], (sel, xs)
