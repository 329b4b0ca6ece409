"""Turing machines: spec parsing, the simulator against the corpus, and the compiled machines step by step."""
import csv
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hardwire.runtime.loop import run_loop
from hardwire.runtime.model import from_compiled
from hypothesis import given, settings

from hardwire.cli.main import main
from hardwire.machines.turing import tm as tmlib
from tests.machines import cot_tm, looped_tm, machines

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "tm" / "machines.tsv"  # a copy of ../shared/corpus/tm
ROWS = list(csv.DictReader(CORPUS.open(), delimiter="\t")) if CORPUS.exists() else []


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_simulator_on_the_corpus():
    assert ROWS
    for row in ROWS:
        r = tmlib.simulate(tmlib.parse_spec(row["spec"]), max_steps=10_000)
        assert (r.steps, r.halted, r.ones, r.head_min, r.head_max) == (
            int(row["steps"]), row["halted"] == "True", int(row["nonblank"]), int(row["head_min"]),
            int(row["head_max"])), row["name"]


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_corpus_on_the_looped_transformer(row, capsys):
    assert main(["tm", row["spec"], "--mode", "loop", "--device", "cpu", "--json"]) == 0
    import json
    info = json.loads(capsys.readouterr().out)
    assert (info["steps"], info["halted"], info["ones"], info["matches_reference"]) == (
        int(row["steps"]), row["halted"] == "True", int(row["nonblank"]), True)


@given(machines())
@settings(max_examples=40)
def test_looped_machine_matches_simulator_every_step(case):
    spec, tape_in = case
    trace: list = []
    model, tokens, ref, offset = looped_tm(spec, tape_in, 60, trace)
    seen = []
    got, = run_loop(model, [tokens], max_steps=60, on_step=lambda t, regs: seen.append(
        (regs["q"][0], regs["head"][0] - offset, {c - offset: v for c, v in enumerate(regs["tape"]) if v})))
    assert seen == trace
    assert (got.steps, got.halted) == (ref.steps, ref.halted)


@pytest.mark.parametrize("spec,needle", [
    ("1RB1LB_1LA1R", "group 2 '1LA1R' (state B): has 5 characters"),
    ("1RB1LB_1XA1RZ", "group 2 '1XA1RZ' (state B): '1XA' for symbol 0 is not a transition"),
    ("1RB1LB_1LA1RC", "goes to state C"),
    ("1RB2LB_1LA1RZ", "writes symbol 2"),
    ("", "empty"),
])
def test_malformed_specs(spec, needle, capsys):
    with pytest.raises(HardwireError, match=None) as e:
        tmlib.parse_spec(spec)
    assert needle in str(e.value)
    assert main(["tm", spec or " "]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_tape_too_small(capsys):
    assert main(["tm", "1RB1LB_1LA0LC_1RZ1LD_1RD0RA", "--tape", "8", "--device", "cpu"]) == 2
    assert "raise --tape to at least 14" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["words", "cells"])
@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_corpus_by_chain_of_thought(row, encoding, capsys):
    import json
    assert main(["tm", row["spec"], "--mode", "cot", "--encoding", encoding, "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["steps"], info["halted"], info["ones"], info["matches_reference"]) == (
        int(row["steps"]), row["halted"] == "True", int(row["nonblank"]), True)
    assert info["layers"] <= (4 if encoding == "words" else 3) and info["encoding"] == encoding


@given(machines())
@settings(max_examples=30)
def test_word_chain_of_thought_matches_simulator_every_step(case):
    """With word tokens (the default encoding), every generated word is the simulator's step: its code the new
    state, written symbol and move, its field the head's cell; at most 4 layers and 2 heads (fewer where the
    machine's program folds, e.g. one with no defined transition generates `halt` alone)."""
    from hardwire.runtime.generate import generate
    model, prompt, want = cot_tm(*case, steps=40, words=True)
    assert generate(model, [prompt])[0] == want
    assert model.config["n_layers"] <= 4 and sum(layer["heads"] for layer in model.config["layers"]) <= 2


@given(machines())
@settings(max_examples=30)
def test_chain_of_thought_matches_simulator_every_step(case):
    """Every generated token is the simulator's step: new state, written symbol, move, head."""
    from hardwire.runtime.generate import generate
    model, prompt, want = cot_tm(*case, steps=40)
    got = generate(model, [prompt])[0]
    assert got == want   # `halt` after an undefined transition: the machine stops without a step
    assert model.config["max_len"] >= len(prompt) + len(got) and model.config["n_layers"] <= 3


def test_checked_in_programs_are_what_the_generator_writes():
    """programs/turing_loop.hw and turing_cot.hw are the 4-state busy beaver, as `hardwire tm` builds it."""
    machine = tmlib.parse_spec("1RB1LB_1LA0LC_1RZ1LD_1RD0RA")
    ref = tmlib.simulate(machine, [])
    cells, offset = tmlib.window_for(machine, [], ref, None)
    assert (ROOT / "programs" / "turing_loop.hw").read_text() == tmlib.loop_program(machine, cells, offset)
    cells, offset = tmlib.window_for(machine, [0], ref, None)
    assert (ROOT / "programs" / "turing_cot.hw").read_text() == tmlib.cot_program(
        machine, 1, -offset, cells - offset - 1, tmlib.cot_length(1, ref))


TEN_MILLION_SPEC = "1RB1LA_0LA0RB"  # a 2-state machine that never halts and stays within a few cells


@pytest.mark.slow
def test_looped_machine_ten_million_steps():
    """Issue 4's bar: the looped machine stays exact for 10^7 steps (re-quantized every pass)."""
    machine = tmlib.parse_spec(TEN_MILLION_SPEC)
    steps = 10 ** 7
    ref = tmlib.simulate(machine, [], steps)
    assert not ref.halted and ref.steps == steps
    cells, offset = tmlib.window_for(machine, [], ref, None)
    model = from_compiled(compile_program(check_source(tmlib.loop_program(machine, cells, offset), "t")), "cpu")
    got, = run_loop(model, [[0] * cells], max_steps=steps, progress=True)
    assert got.steps == steps and not got.halted
    assert got.outputs["final_tape"] == ref.window(-offset, cells - offset - 1)
    assert got.outputs["final_head"][0] - offset == ref.head
