"""A default parameter budget: a model over --max-params is refused before its weights are built, naming the
program value (line:column) with the largest share (issue 17, faults: a 6-line onehot() of two means had
211 million parameters, reverse at max_len 256 209 million)."""
import json
from pathlib import Path

import pytest
from hardwire.compiler import wire
from hardwire.compiler.check.elaborate import check_file, check_source
from hardwire.compiler.core.errors import HardwireError
from hardwire.compiler.pipeline import compile_program
from hardwire.compiler.size_budget import DEFAULT_MAX_PARAMS, Share
from hypothesis import given, settings
from hypothesis import strategies as st

import hardwire
from hardwire.cli.main import main, parser

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
TWO_MEANS = """program twomeans
vocab {0, 1}
max_len 32
a = aggregate(select(indices, indices, <=), scalar(tokens))
b = aggregate(select(indices, indices, >=), scalar(tokens))
output y = onehot(a) + onehot(b)
"""
# y only outputs read, so it is a code (encode.codes: 1 dim, not 12,531 at max_len 24, where it now fits); the lookup
# over the two means' combinations is what stays large
TWO_MEANS_LINE = ("twomeans.hw:6:12: the compiled model would have 147331072 parameters (layers 2, d_model 688, "
                  "d_mlp 105624), over the budget of 50000000 (--max-params); the largest part is y (1 residual dim, "
                  "105,624 hidden units: 72,776,384 parameters, 49%); lower max_len or simplify the program")


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    (tmp_path / "twomeans.hw").write_text(TWO_MEANS)
    return tmp_path


@pytest.fixture
def no_dense_weights(monkeypatch):
    """Any dense weight matrix allocated fails the test: refusals come before the weights are built."""
    def never(*args, **kwargs):
        raise AssertionError("a dense weight matrix was allocated")
    monkeypatch.setattr(wire, "embed", never)
    monkeypatch.setattr(wire, "dense_head", never)


@pytest.mark.parametrize("name", sorted(p.name for p in PROGRAMS.glob("*.hw")))
def test_every_program_fits_the_default_budget(name):
    """Measured: every program at its defaults is at least 90 times under the default."""
    assert compile_program(check_file(str(PROGRAMS / name))).summary()["params"] * 90 < DEFAULT_MAX_PARAMS


def test_the_default_is_the_clis_and_the_apis():
    assert parser().parse_args(["compile", "x.hw", "-o", "y"]).max_params == DEFAULT_MAX_PARAMS
    assert parser().parse_args(["check", "x.hw"]).max_params == DEFAULT_MAX_PARAMS


def test_two_means_refused_by_default_naming_the_line(capsys, no_dense_weights, tmp_path):
    for args in (["compile", "twomeans.hw", "-o", "out.safetensors"], ["check", "twomeans.hw"]):
        assert main(args) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == f"hardwire: error: {TWO_MEANS_LINE}\n"
    assert not (tmp_path / "out.safetensors").exists()
    with pytest.raises(HardwireError) as e:
        hardwire.compile_source(TWO_MEANS, name="twomeans.hw")
    assert str(e.value) == TWO_MEANS_LINE


def test_the_budget_is_overridable():
    small = TWO_MEANS.replace("max_len 32", "max_len 6")
    params = hardwire.compile_source(small, device="cpu").summary()["params"]
    assert main(["compile", "twomeans.hw", "-o", "out.safetensors", "--max-params", str(params)]) == 2
    Path("small.hw").write_text(small)
    assert main(["compile", "small.hw", "-o", "out.safetensors", "--max-params", str(params)]) == 0
    with pytest.raises(HardwireError, match="small.hw:6:12: .* over the budget of 10 "):
        hardwire.compile_source(small, name="small.hw", max_params=10)


def test_reverse_at_max_len_256_names_the_map_of_length_and_indices(no_dense_weights):
    text = (PROGRAMS / "reverse.hw").read_text().replace("max_len 16", "max_len 256")
    with pytest.raises(HardwireError) as e:
        compile_program(check_source(text, "reverse.hw"), DEFAULT_MAX_PARAMS)
    assert str(e.value).startswith("reverse.hw:5:7: the compiled model would have 70819968 parameters")
    assert "32,896 hidden units" in str(e.value)  # the 256 * 257 / 2 pairs with an index below length


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(p.name for p in PROGRAMS.glob("*.hw"))), st.integers(1, 5))
def test_the_shares_add_up_and_the_largest_is_named(name, cut):
    """The shares of every value (dims and units split between d_model and K) add up to at most the model less
    its embedding rows, and a refusal names the largest value's line:column and share."""
    prog = check_file(str(PROGRAMS / name))
    size = compile_program(prog).summary()
    seen = {}
    real = wire.check_size

    def spy(prog, d, plan, max_params, layout=None, sops=None, owners=([], [])):
        from hardwire.compiler.size_budget import shares
        seen["parts"] = shares(layout, sops or [], *owners)
        seen["d"] = d
        return real(prog, d, plan, max_params, layout, sops, owners)
    wire.check_size = spy
    try:
        with pytest.raises(HardwireError) as e:
            compile_program(prog, max_params=size["params"] // (cut + 1))
    finally:
        wire.check_size = real
    d, parts = seen["d"], seen["parts"]
    rows = ((1 if prog.word_vocab else len(prog.vocab) + 1) + prog.max_len + 1
            + (prog.word_bits if prog.word_vocab else 0))
    total = sum(p.params(size["params"] / d, d) for p in parts)
    assert total <= size["params"] - rows * d / 2 + len(parts)   # less what no value owns (BOS dims, padding)
    top = max(parts, key=lambda p: p.params(size["params"] / d, d))
    if top.sop.line:
        assert f":{top.sop.line}:{top.sop.column}: " in str(e.value)
    assert f"{top.params(size['params'] / d, d):,} parameters" in str(e.value)


def test_share_of_a_product():
    """A value with all the dims and none of K owns half of d * K; with both, all of it."""
    assert Share(None, dims=10).params(per_dim=4, d=10) == 20
    assert Share(None, dims=10, units=2).params(per_dim=4, d=10) == 40


def test_compile_says_where_the_size_goes(tmp_path, capsys, monkeypatch):
    """`hardwire compile` lists the values with the largest shares, largest first, at their line:column and with
    why (a map of two means looks up every combination of their values); --json carries the same list."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "two.hw").write_text(TWO_MEANS.replace("max_len 32", "max_len 4"))
    assert main(["compile", "two.hw", "-o", "two.safetensors"]) == 0
    text = capsys.readouterr().out
    listed = text.split("largest parts:\n", 1)[1].splitlines()
    assert listed[0].startswith("  y at 6:12: ") and "combinations of" in listed[0] and "hidden units" in listed[0]
    assert len(listed) == 4 and listed[3].startswith("hint: a map of several values is one lookup over every")
    assert main(["compile", "two.hw", "-o", "two.safetensors", "--json"]) == 0
    largest = json.loads(capsys.readouterr().out)["largest"]
    assert [p["value"] for p in largest][0] == "y" and (largest[0]["line"], largest[0]["column"]) == (6, 12)
    shares = [p["params"] for p in largest]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= json.loads(
        json.dumps(compile_program(check_source((tmp_path / "two.hw").read_text(), "two.hw")).summary()))["params"]


def test_every_program_reports_its_largest_parts():
    for path in sorted(PROGRAMS.glob("*.hw")):
        small = {"subleq": {"mem": 16, "bits": 8}}.get(path.stem)
        model = compile_program(check_file(str(path), small))
        assert 1 <= len(model.largest) <= 3, path.stem
        assert all(p["params"] > 0 and p["why"] for p in model.largest), path.stem
