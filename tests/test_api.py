"""The Python API (hardwire/): its doctests, and each method on a plain, a looped and a generating program."""
import doctest
import json
import re
from pathlib import Path

import pytest
import torch

import hardwire
import hardwire.api
import hardwire.trace
from hardwire.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
GCD = re.search(r"^```hw\n(program gcd\n.*?)^```", (ROOT / "docs" / "language.md").read_text(), re.S | re.M)[1]


@pytest.mark.parametrize("module", [hardwire, hardwire.api, hardwire.trace], ids=lambda m: m.__name__)
def test_doctests(module, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name programs/*.hw
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_callable_has_an_example():
    public = [hardwire.compile_file, hardwire.compile_source, hardwire.load, hardwire.Trace, hardwire.Check,
              hardwire.Trace.features, hardwire.Trace.table, hardwire.Model]
    public += [getattr(hardwire.Model, n) for n in vars(hardwire.Model) if not n.startswith("_")]
    public += [hardwire.Model.__call__]
    for obj in public:
        doc = (obj.fget if isinstance(obj, property) else obj).__doc__
        assert doc and ">>>" in doc, obj


@pytest.fixture(scope="module")
def reverse():
    return hardwire.compile_file(str(PROGRAMS / "reverse.hw"), device="cpu")


def test_plain_program(reverse):
    assert reverse.kind == "plain" and reverse.name == "reverse"
    assert reverse("a b c") == {"input": ["a", "b", "c"], "outputs": {"reversed": ["c", "b", "a"]}}
    assert reverse(["a", "b", "c"]) == reverse("a b c")  # a list of tokens is one input
    batch = [["a"], ["b", "c", "d"], list("abcdabcd")]
    assert reverse(batch) == reverse.interpret(batch) == [reverse(x) for x in batch]
    assert repr(reverse).startswith("Model(reverse: plain, 3 layers, 2 heads, d_model 75")
    with pytest.raises(hardwire.HardwireError, match="not in the vocabulary"):
        reverse("a z")
    with pytest.raises(hardwire.HardwireError, match="list of tokens"):
        reverse(3)


def test_summary_save_and_load_match_the_cli(reverse, tmp_path, capsys):
    cli_file = tmp_path / "cli.safetensors"
    assert main(["compile", str(PROGRAMS / "reverse.hw"), "-o", str(cli_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {k: info[k] for k in reverse.summary()} == reverse.summary()
    api_file = tmp_path / "api.safetensors"
    reverse.save(str(api_file))
    assert api_file.read_bytes() == cli_file.read_bytes()
    loaded = hardwire.load(str(api_file), device="cpu")
    assert loaded.summary() == reverse.summary() and repr(loaded) == repr(reverse)
    again = tmp_path / "again.safetensors"
    loaded.save(str(again))
    assert again.read_bytes() == cli_file.read_bytes()
    assert main(["run", str(api_file), "--input", "a b d", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == loaded("a b d")
    with pytest.raises(hardwire.HardwireError, match="holds no program"):
        loaded.check()
    with pytest.raises(hardwire.HardwireError, match="holds no program"):
        loaded.interpret("a")
    with pytest.raises(hardwire.HardwireError, match="no such weight file"):
        hardwire.load(str(tmp_path / "missing.safetensors"))


def test_trace(reverse):
    t = reverse.trace("a b c")
    assert len(t.layers) == reverse.summary()["layers"] + 1 and t.labels == reverse.transformer.labels
    assert all(x.shape == (4, 75) for x in t.layers)
    assert sorted(t.attention) == [i + 1 for i, layer in enumerate(reverse.compiled.config["layers"])
                                   if layer["heads"]]
    for p, want in enumerate(["c", "b", "a"], start=1):
        assert t.features(p)[f"reversed={want}"] == pytest.approx(1.0)
    assert "1 a      not_bos, indices=0, tokens=a" in t.table(0)
    assert repr(t).splitlines()[0] == "Trace(reverse: 4 positions, 3 layers, d_model 75)"
    with pytest.raises(IndexError):
        t.table(9)


def test_check_finds_a_broken_model():
    model = hardwire.compile_file(str(PROGRAMS / "histogram.hw"), device="cpu")
    assert model.check(samples=30) == hardwire.Check(30, 0, None)
    with torch.no_grad():
        model.transformer.p("layers.0.mlp.W_out").zero_()
    found = model.check(samples=30, seed=1)
    assert found.samples == 30 and found.mismatches > 0
    assert set(found.first) == {"input", "model", "interpreter"} and found.first["model"] != found.first["interpreter"]


def test_looped_program_gcd():
    gcd = hardwire.compile_source(GCD, name="gcd.hw", device="cpu")
    assert gcd.kind == "looped"
    assert gcd("1071 462") == {"input": [1071, 462], "outputs": {"g": [21, 21]}, "steps": 11, "halted": True,
                               "emitted": []}
    batch = [[1071, 462], [12, 18], [7, 7]]
    assert gcd(batch) == gcd.interpret(batch)
    limited = gcd("1071 462", max_steps=3)
    assert (limited["steps"], limited["halted"]) == (3, False) and limited == gcd.interpret("1071 462", max_steps=3)
    assert gcd.check(samples=10, max_steps=50).mismatches == 0
    assert len(gcd.trace("12 18").layers) == gcd.summary()["layers"] + 1


def test_looped_program_subleq():
    subleq = hardwire.compile_file(str(PROGRAMS / "subleq.hw"), params={"mem": 16, "bits": 8}, device="cpu")
    # print mem[9] (72) and mem[10] (105), then halt by jumping to -1
    image = "9 -1 3 10 -1 6 11 11 -1 72 105 0"
    assert subleq(image)["emitted"] == [72, 105] == subleq.interpret(image)["emitted"]
    assert subleq(image) == subleq.interpret(image)
    assert subleq.summary()["d_model"] == 13 * 8 + 26


def test_generating_program():
    parity = hardwire.compile_file(str(PROGRAMS / "parity_cot.hw"), params={"n": 4}, device="cpu")
    assert parity.kind == "generating"
    prompts = [[1, 0, 1, 1, "="], [1, 1, 1, 1, "="], [0, 0, 0, 1, "="]]
    got = parity(prompts)
    assert got == parity.interpret(prompts)
    assert [r["generated"][-1] for r in got] == [1, 0, 1]
    assert parity.check(samples=30).mismatches == 0


def test_compile_errors_name_the_source():
    with pytest.raises(hardwire.HardwireError, match=r"mine\.hw:4:.*unknown name 'tokenz'"):
        hardwire.compile_source("program x\nvocab {1}\nmax_len 4\noutput y = tokenz\n", name="mine.hw")
    with pytest.raises(hardwire.HardwireError, match="dtype"):
        hardwire.compile_file(str(PROGRAMS / "histogram.hw"), dtype="float16")


def test_float64():
    model = hardwire.compile_file(str(PROGRAMS / "histogram.hw"), device="cpu", dtype="float64")
    assert model.trace("a b").layers[0].dtype.name == "float64"
    assert model("a b a")["outputs"]["hist"] == [2, 1, 2]
