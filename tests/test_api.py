"""The Python API (hardwire/): its doctests, and each method on a plain, a looped and a generating program."""
import doctest
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from hardwire.compiler.artifact import from_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hardwire
import hardwire.api
import hardwire.heads
import hardwire.inputs
import hardwire.trace
from hardwire.cli.main import main
from hardwire.harness import json_row

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "programs"
GCD = re.search(r"^```hw[^\n]*\n(program gcd\n.*?)^```", (ROOT / "docs" / "language.md").read_text(), re.S | re.M)[1]


@pytest.mark.parametrize("module", [hardwire, hardwire.api, hardwire.heads, hardwire.trace],
                         ids=lambda m: m.__name__)
def test_doctests(module, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name programs/*.hw
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_callable_has_an_example():
    public = [hardwire.compile_file, hardwire.compile_source, hardwire.load, hardwire.Trace, hardwire.Check,
              hardwire.Trace.features, hardwire.Trace.table, hardwire.Model, hardwire.heads.Head,
              hardwire.heads.Head.hook, hardwire.heads.Head.name, hardwire.trace.Attention]
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
    assert repr(reverse).startswith("Model(reverse: plain, 3 layers, 2 heads, d_model 40")
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
    assert all(x.shape == (4, reverse.summary()["d_model"]) for x in t.layers)
    assert sorted(t.attention) == [i + 1 for i, layer in enumerate(reverse.compiled.config["layers"])
                                   if layer["heads"]]
    values = reverse.compiled.outputs["reversed"]["values"]   # a code (encode.codes): the value's index
    for p, want in enumerate(["c", "b", "a"], start=1):
        assert t.features(p)["reversed"] == pytest.approx(values.index(want))
    assert "1 a      not_bos, indices=0, tokens=a" in t.table(0)
    assert repr(t).splitlines()[0] == "Trace(reverse: 4 positions, 3 layers, d_model 40)"
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


WORDS = st.lists(st.sampled_from("abcd"), min_size=1, max_size=16).map(" ".join)


def test_a_list_of_strings_is_a_batch(reverse):
    """m(["x y", "z z z"]) runs two inputs; a list of one-word strings stays one input unless batch=True."""
    assert reverse(["a b", "c c c"]) == [reverse("a b"), reverse("c c c")]
    assert reverse(("a b", ["d"])) == [reverse("a b"), reverse("d")]     # strings and token lists mix
    assert reverse(["c", "c", "a"]) == reverse("c c a")                   # tokens, as the tutorial shows
    assert reverse(["c", "a"], batch=True) == [reverse("c"), reverse("a")]
    with pytest.raises(hardwire.HardwireError, match="not in the vocabulary"):
        reverse(["a b"], batch=False)                                    # the token "a b" is no token
    with pytest.raises(hardwire.HardwireError, match="the batch is empty"):
        reverse([], batch=True)
    with pytest.raises(hardwire.HardwireError, match="needs a list of inputs"):
        reverse("a b", batch=True)
    assert reverse.interpret(["a b", "c c c"]) == reverse(["a b", "c c c"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(WORDS, min_size=1, max_size=6))
def test_batch_of_strings_equals_each_alone(reverse, texts):
    """Property: a batch of strings gives, row by row, what each string gives alone, and the interpreter agrees."""
    if len(texts) == 1 and len(texts[0].split()) == 1:
        texts = texts * 2  # a single one-word string is one input, not a batch of one
    if all(len(t.split()) == 1 for t in texts):
        got = reverse(texts, batch=True)
    else:
        got = reverse(texts)
    assert got == [reverse(t) for t in texts] == reverse.interpret(texts, batch=True)


def test_tokens_of_the_wrong_kind_are_named():
    """sort(["3", "1", "2"]) says the tokens are strings and the vocabulary holds integers, and how to pass them."""
    sort = hardwire.compile_file(str(PROGRAMS / "sort.hw"), device="cpu")
    with pytest.raises(hardwire.HardwireError) as info:
        sort(["3", "1", "2"])
    assert str(info.value) == ("token '3' at position 0 is a string, and the vocabulary of sort holds integers "
                               '(1, 2, 3, 4): pass the input as one string, "3 1 2", or as integers, [3, 1, 2]')
    assert sort([3, 1, 2]) == sort("3 1 2")
    strings = hardwire.compile_source('program s\nvocab {"1", "2"}\nmax_len 4\noutput o = tokens\n', device="cpu")
    with pytest.raises(hardwire.HardwireError, match=r"^token 1 at position 0 is an integer, and the vocabulary of s "
                                                     r'holds strings \(1, 2\): pass the input as one string, "1 2"$'):
        strings([1, 2])
    assert strings("1 2")["outputs"]["o"] == ["1", "2"]
    with pytest.raises(hardwire.HardwireError, match=r"^token 'z' at position 1 is a string, and the vocabulary of "
                                                     r"sort holds integers \(1, 2, 3, 4\)$"):
        sort.trace([[1, "z"]])  # nothing to suggest: "1 z" fails too
    with pytest.raises(hardwire.HardwireError, match="token 7 at position 1 is not in the vocabulary"):
        sort([1, 7])  # the right kind, a wrong value: the runtime's message


def test_vocab_max_len_and_heads(reverse, tmp_path):
    assert reverse.vocab == ["a", "b", "c", "d"] and reverse.max_len == 16
    assert hardwire.compile_file(str(PROGRAMS / "sort.hw")).vocab == [1, 2, 3, 4]
    subleq = hardwire.compile_file(str(PROGRAMS / "subleq.hw"), params={"mem": 8, "bits": 8}, device="cpu")
    assert subleq.vocab == range(-128, 128) and subleq.max_len == 8
    heads = reverse.heads
    assert [(h.layer, h.index, h.selector, h.value, h.output) for h in heads] == [
        (1, 0, "select(indices, indices, true)", None, "length"),
        (3, 0, "select(indices, opp, ==)", "tokens", "reversed")]
    assert [(h.hook, h.name) for h in heads] == [("blocks.0.attn.hook_pattern", "L0H0"),
                                                 ("blocks.2.attn.hook_pattern", "L2H0")]
    trace = reverse.trace("a b c")
    for h in heads:  # each head indexes its layer's pattern
        assert trace.attention[h.layer][h.index].shape == (4, 4)
    path = tmp_path / "r.safetensors"
    reverse.save(str(path))
    loaded = hardwire.load(str(path), device="cpu")
    assert [(h.layer, h.index, h.hook) for h in loaded.heads] == [(h.layer, h.index, h.hook) for h in heads]
    assert all(h.selector is None for h in loaded.heads) and loaded.vocab == reverse.vocab


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.hw")))
def test_heads_match_the_layers_of_every_program(name):
    """Every program's heads are placed where its compiled layers have them, each with a selector."""
    params = {"subleq": {"mem": 8, "bits": 8}, "turing_cot": {"tape": 8}}.get(name)
    try:
        model = hardwire.compile_file(str(PROGRAMS / f"{name}.hw"), params=params, device="cpu")
    except hardwire.HardwireError:
        model = hardwire.compile_file(str(PROGRAMS / f"{name}.hw"), device="cpu")
    counts = [layer["heads"] for layer in model.compiled.config["layers"]]
    assert [sum(h.layer == i + 1 for h in model.heads) for i in range(len(counts))] == counts
    assert all(h.selector and h.selector.startswith(("select(", "!", "(")) for h in model.heads)


def test_trace_attention_keys_are_explained(reverse):
    trace = reverse.trace("a b")
    with pytest.raises(KeyError) as info:
        trace.attention[0]
    assert str(info.value) == ("trace.attention has no layer 0: it holds the layers with heads, 1 and 3 (layer 0 is "
                               "the embedding, layers count from 1; model.heads names each head)")
    with pytest.raises(KeyError, match="no layer 2"):
        trace.attention[2]
    assert 0 not in trace.attention and trace.attention.get(0) is None and sorted(trace.attention) == [1, 3]
    const = hardwire.compile_source("program c\nvocab {1}\nmax_len 2\noutput o = tokens + 1\n", device="cpu")
    with pytest.raises(KeyError, match="^trace.attention has no layer 1: this model has no attention heads$"):
        const.trace("1").attention[1]


def test_trace_on_a_batch(reverse):
    texts = ["a b c", "d", "a a b b c c"]
    traces = reverse.trace(texts)
    assert isinstance(traces, list) and len(traces) == 3
    for text, t in zip(texts, traces):
        alone = reverse.trace(text)
        assert t.tokens == alone.tokens and repr(t) == repr(alone)
        assert all(x.shape == y.shape and abs(x - y).max() <= 1e-6 for x, y in zip(t.layers, alone.layers))
        assert sorted(t.attention) == sorted(alone.attention)
        assert all(abs(t.attention[k] - alone.attention[k]).max() <= 1e-6 for k in t.attention)
    assert len(reverse.trace([["a"], ["b"]])) == 2


def test_outputs_are_typed_and_json_encodes_them(tmp_path, capsys):
    """Fractions, tuples, booleans and none come back as values; `run --json` prints them in to_json's encoding,
    which from_json reads back to the same values."""
    src = ('program typed\nvocab {"a", "b"}\nmax_len 4\n'
           'n = width(select(tokens, tokens, ==))\n'
           'output frac = aggregate(select(indices, indices, <=), scalar(tokens == "a"))\n'
           'output pair = (tokens, n)\noutput same = n == 2\n')
    model = hardwire.compile_source(src, name="typed.hw", device="cpu")
    out = model("a b a")["outputs"]
    assert out == {"frac": [1, Fraction(1, 2), Fraction(2, 3)], "pair": [("a", 2), ("b", 1), ("a", 2)],
                   "same": [True, False, True]}
    assert type(out["frac"][0]) in (int, Fraction) and type(out["frac"][1]) is Fraction
    assert model.interpret("a b a")["outputs"] == out
    path = tmp_path / "typed.safetensors"
    model.save(str(path))
    assert main(["run", str(path), "--input", "a b a", "--json", "--device", "cpu"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == json_row(model("a b a"))
    assert shown["outputs"]["frac"] == [1, {"frac": "1/2"}, {"frac": "2/3"}]
    assert shown["outputs"]["pair"][0] == {"tuple": ["a", 2]}
    assert {k: [from_json(v) for v in vs] for k, vs in shown["outputs"].items()} == out
    assert main(["run", str(path), "--input", "a b a", "--device", "cpu"]) == 0
    assert "frac: 1 1/2 2/3" in capsys.readouterr().out


VALUES = st.recursive(st.none() | st.booleans() | st.integers(-50, 50) | st.text("ab/1", max_size=3)
                      | st.fractions(max_denominator=9), lambda inner: st.tuples(inner, inner), max_leaves=4)


@given(VALUES)
def test_json_encoding_round_trips(v):
    """Property: every value json_row prints reads back (from_json) as the same value of the same type."""
    from hardwire.compiler.core.sops import value_key
    back = from_json(json.loads(json.dumps(json_row({"v": [v]})))["v"][0])
    assert value_key(back) == value_key(v)


def test_api_messages_are_the_clis(tmp_path, capsys):
    """The API's refusals read as the CLI's (docs/errors.md): "cannot read file", not "cannot read program"."""
    for path in (tmp_path / "nope.hw", tmp_path):
        with pytest.raises(hardwire.HardwireError) as info:
            hardwire.compile_file(str(path))
        assert main(["compile", str(path), "-o", str(tmp_path / "x.safetensors")]) == 2
        assert capsys.readouterr().err.strip() == f"hardwire: error: {info.value}"
        assert "cannot read file" in str(info.value)
    bad = tmp_path / "bad.hw"
    bad.write_bytes(b"program x\nvocab {1}\nmax_len 4\noutput y = \xff\n")
    with pytest.raises(hardwire.HardwireError) as info:
        hardwire.compile_file(str(bad))
    assert main(["check", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == f"hardwire: error: {info.value}"


def test_checker_warnings_reach_python_users():
    """A literal that never matches is a Python warning in the CLI's words, and strict=True refuses it."""
    src = 'program x\nvocab {"a", "b", "c"}\nmax_len 4\noutput y = width(select(tokens, "e", ==))\n'
    with pytest.warns(UserWarning, match=r'never selects a key: "e" is not a value of tokens .*strict=True'):
        m = hardwire.compile_source(src, name="e.hw")
    assert m("a b")["outputs"] == {"y": [0, 0]}
    with pytest.raises(hardwire.HardwireError, match="never selects a key"):
        hardwire.compile_source(src, name="e.hw", strict=True)
