"""Position rows stored as a formula (compiler/wire.position_form, embed.position_form): the same model as the table,
decoded the same on every path, proven the same, certified the same, saved and loaded; refused where a value is a
function of the position; and the long chain of thought it makes possible (max_len past 10^7) compiles small."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hardwire.compiler.artifact import position_table, tabled
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.core.limits import MAX_LEN_LIMIT
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.wire import POSITION_ROWS
from hardwire.runtime.fast import FastModel
from hardwire.runtime.generate import generate
from hardwire.runtime.index_attention import Rule, affine_part, derive, position_part
from hardwire.runtime.model import from_compiled, load
from hypothesis import given, settings
from hypothesis import strategies as st

from hardwire.harness import sample_input
from hardwire.machines.turing import cot_words
from hardwire.machines.turing import tm as tmlib
from tests.machines import machines

BB5 = "1RB1LC_1RC1RB_1RD0LE_1LA1LD_1RZ0LA"
NO_POSITION_FEATURES = ["caesar", "dyck1", "dyck2", "frac_prevs", "histogram", "length", "pair_balance",
                        "parity_count"]


def both(prog_or_text, dtype=torch.float64):
    """(table model, formula model) of one program."""
    prog = check_source(prog_or_text, "generated") if isinstance(prog_or_text, str) else prog_or_text
    return tuple(from_compiled(compile_program(prog, positions=m), "cpu", dtype) for m in ("table", "formula"))


def word_cot(spec: str, tape: list[int], steps: int):
    """(program text, encoding, prompt, the simulator's words) of a machine's word chain of thought."""
    machine, tape = tmlib.parse_spec(spec), tape or [0]
    ref = tmlib.simulate(machine, tape, max_steps=steps)
    cells, off = tmlib.window_for(machine, tape, ref, None)
    lo, hi, n = -off, cells - off - 1, tmlib.cot_length(len(tape), ref)
    enc = cot_words.encoding(machine, lo, hi, n)
    return (cot_words.cot_word_program(machine, len(tape), lo, hi, n), enc, enc.prompt(tape),
            cot_words.simulated_words(machine, tape, enc, ref.steps).tolist())


def test_the_formula_is_the_table_row_for_row():
    text, *_ = word_cot(BB5, [0], 300)
    table, form = both(text)
    assert form.p("embed.positions") is None and form.p("embed.position_form").shape == (2, table.d_model)
    assert torch.equal(form.positions(302), table.p("embed.positions"))
    p = torch.tensor([[0, 5, 301], [1, 2, 3]])
    assert torch.equal(form.position_rows(p), table.p("embed.positions")[p])
    tensors = {k.replace("__", "."): v.numpy() for k, v in form.w.items()}
    assert np.array_equal(position_table(tensors, 302), table.p("embed.positions").numpy())


@pytest.mark.parametrize("name", NO_POSITION_FEATURES)
def test_programs_without_position_features_run_the_same_with_the_formula(name):
    import random
    prog = check_file(f"programs/{name}.hw", {})
    table, form = both(prog, torch.float32)
    rng = random.Random(name)
    batch = [sample_input(rng, list(prog.vocab), prog.max_len, prog.distinct, 0, prog.exact_len) for _ in range(8)]
    assert form.run(batch) == table.run(batch)
    assert FastModel.of(form).run(batch) == table.run(batch)


@settings(max_examples=6, deadline=None)
@given(machines())
def test_a_random_machines_chain_of_thought_decodes_the_same_on_every_path(m):
    spec, tape = m
    text, enc, prompt, want = word_cot(spec, tape, 60)
    table, form = both(text)
    kernels = ["torch"] + (["native"] if _numba() else [])
    for model in (table, form):
        assert generate(model, [prompt], fast=False)[0] == want
        assert generate(model, [prompt], fast=True)[0] == want
        for k in kernels:
            assert generate(model, [prompt], attention="index", kernel=k)[0] == want
    rules = [derive(table), derive(form)]
    assert all(isinstance(r, Rule) for r in rules[0] + rules[1])
    for a, b in zip(*rules):   # the formula's step is exact where the table's is a difference of two scores
        assert a.kind == b.kind and torch.equal(a.target, b.target)
        assert a.margin == pytest.approx(b.margin, rel=1e-12) and a.leak == pytest.approx(b.leak, rel=1e-9)


def _numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5), st.lists(st.integers(-3, 3), min_size=1, max_size=5),
       st.integers(1, 40))
def test_the_affine_position_part_is_the_enumerated_one(a, s, n):
    """affine_part's reductions (ends, steps, first argmax, runner-up) equal position_part's over every position."""
    k = min(len(a), len(s))
    a, s = np.array(a[:k]), np.array(s[:k], dtype=float)
    rows = np.stack([a, s], 1)                                   # p(u, j) = a_u + (j - 1) s_u as a row . key
    keys = np.stack([np.ones(n), np.arange(n, dtype=float)], 1)
    want, got = position_part(rows, keys), affine_part(a, s, n)
    for f in ("pmin", "pmax", "dmin", "dmax", "top", "top_s", "second"):
        assert np.array_equal(getattr(got, f), getattr(want, f)), f


def test_certify_reads_the_formula_as_its_table():
    from hardwire.certify.certifier import certify
    from hardwire.certify.model import from_compiled as certified
    text, *_ = word_cot(BB5, [0], 200)
    a, b = (certify(certified(compile_program(check_source(text, "g"), positions=m)), "float64")
            for m in ("table", "formula"))
    assert a.ok and b.ok and a.length == b.length and [f.detail for f in a.findings] == [f.detail for f in b.findings]


def test_a_formula_model_saves_and_loads(tmp_path):
    text, enc, prompt, want = word_cot(BB5, [0], 200)
    c = compile_program(check_source(text, "generated"), positions="formula")
    path = tmp_path / "w.safetensors"
    c.save(str(path))
    model = load(str(path), "cpu", torch.float64)
    assert model.p("embed.position_form") is not None
    assert generate(model, [prompt], attention="index")[0] == want


def test_the_formula_is_refused_where_a_value_is_a_function_of_the_position():
    with pytest.raises(HardwireError, match="'indices' is the position, so they need a table of 17 rows"):
        compile_program(check_file("programs/reverse.hw", {}), positions="formula")
    with pytest.raises(HardwireError, match=r"parity_cot.hw:\d+:\d+: the position rows have no formula"):
        compile_program(check_file("programs/parity_cot.hw", {}), positions="formula")


def test_auto_takes_the_formula_past_a_table_of_position_rows_only():
    text, *_ = word_cot(BB5, [0], 100)
    long = text.replace("max_len 101", f"max_len {POSITION_ROWS}")
    assert "embed.positions" in compile_program(check_source(text, "g")).tensors
    c = compile_program(check_source(long, "g"))
    assert "embed.position_form" in c.tensors and "embed.positions" not in c.tensors
    assert next(g for g in c.config["groups"] if g["name"] == "index")["integers"] == [0, POSITION_ROWS - 1]
    tensors, cfg = tabled(c.tensors, {**c.config, "max_len": 4})   # written out: a table, and the grid listed
    assert tensors["embed.positions"].shape == (5, c.config["d_model"])
    grid = next(g for g in cfg["groups"] if g["name"] == "index")["grid"]
    assert len(grid) == POSITION_ROWS and grid[:2] == [0.0, 1.0] and grid[-1] == POSITION_ROWS - 1


def test_bb5_to_halt_compiles_small_and_its_head_is_proven():
    """The model `hardwire tm BB5 --mode cot` decodes to the halt (47,176,870 steps): compiled with its window
    and length, it is 4 layers of d_model about 130 whatever the length, with its one head proven in float64."""
    machine = tmlib.parse_spec(BB5)
    n = 47_176_871
    text = cot_words.cot_word_program(machine, 1, -12242, 46, n)
    c = compile_program(check_source(text, "g"))
    assert "embed.position_form" in c.tensors and c.config["n_layers"] == 4 and c.config["d_model"] < 140
    model = from_compiled(c, "cpu", torch.float64)
    (rule,) = derive(model)
    assert isinstance(rule, Rule) and rule.kind == "latest" and rule.leak < 1e-15
    from hardwire.runtime.memory import index_bytes
    assert index_bytes(model, 1) < 4 << 30   # the tokens dominate: 56 bytes each, no table of positions


def test_indices_past_the_enumerated_limit_is_refused_where_it_is_read():
    src = f"program p\nvocab {{1, 2}}\nmax_len {MAX_LEN_LIMIT + 1}\noutput o = map(x -> x + 1, indices)\n"
    with pytest.raises(HardwireError, match=r"p.hw:4:\d+: a program that reads indices has at most 10,000,000 "
                                            r"positions .* \(line 3\)"):
        check_source(src, "p.hw")
