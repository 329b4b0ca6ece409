"""`hardwire explain`: one self-contained page per program or weight file, in the program's words; the faults of
issue 21 (a LayerNorm called a lookup table, repeated titles and labels, internal names, a misplaced "more rows"
marker, a cut-off generation shown as ✓, a long generated source printed first), the step controls, and the
error paths."""
import collections
import html
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.fuse import fuse_maps
from hypothesis import given
from hypothesis import strategies as st

from hardwire.cli.main import main
from hardwire.explain import page as explain_mod
from hardwire.explain.layers import combo_index, with_gaps
from hardwire.explain.names import raw_labels, unique
from hardwire.explain.text import definition, infix, remember_text, selector

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
INTERNAL = ["_word", "_test", "_first", "identity", "__emit_on", "__halted", "word(_-(indices, 1))"]
SUBLEQ_HEADS = ["select(indices, pc, ==)", "select(indices - 1, pc, ==)", "select(indices - 2, pc, ==)",
                "select(indices, a, ==)", "select(indices, b, ==)"]


def page(tmp_path_factory, name: str, args: list[str]) -> tuple[Path, str]:
    """Run `hardwire explain` into a fresh folder: (the folder, the page as text, entities unescaped)."""
    out = tmp_path_factory.mktemp(name) / "page"
    assert main(["explain", *args, "-o", str(out)]) == 0
    return out, html.unescape((out / "index.html").read_text(encoding="utf-8"))


def shown(text: str) -> str:
    """What a reader sees without hovering: the page less its hover titles, script and style."""
    text = re.sub(r"<title>.*?</title>|<script>.*?</script>|<style>.*?</style>", "", text, flags=re.S)
    return text


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    return page(tmp_path_factory, "parity", [str(PROGRAMS / "parity_count.hw"), "--input", "1 0 1 1",
                                             "--param", "n=8"])


@pytest.fixture(scope="module")
def subleq(tmp_path_factory):
    # mem[6] is printed (A=6, B=-1), then 7 7 -1 zeroes mem[7] and jumps to -1: halt after 2 steps
    return page(tmp_path_factory, "subleq", [str(PROGRAMS / "subleq.hw"), "--input", "6 -1 3 7 7 -1 5 0",
                                             "--param", "mem=8", "--param", "bits=4"])


def self_contained(out: Path, text: str) -> None:
    """One file, nothing fetched: inline CSS, inline SVG, one inline script."""
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<link" not in text and "http://" not in text and "https://" not in text and "<img" not in text
    assert text.count("<script>") == 1 and "<script src" not in text and "<style>" in text
    assert "<svg" in text


def figures_have_unique_rows(text: str) -> None:
    """No heatmap repeats a row label (issue 21: `_test=False` twice)."""
    for svg in re.findall(r'<svg class="heat".*?</svg>', text, re.S):
        rows = re.findall(r'<text class="rl"[^>]*>(.*?)</text>', svg)
        repeated = [k for k, v in collections.Counter(rows).items() if v > 1]
        assert not repeated, repeated


def test_parity_page(parity):
    out, text = parity
    self_contained(out, text)
    figures_have_unique_rows(text)
    assert "select(tokens, 1, ==)" in text                      # the one head's selector, as written
    assert "ones = width(select(tokens, 1, ==))" in text        # the program source
    assert "parity = ones % 2" in text                          # the MLP's formula
    assert "d_model = 15" in text and "1 layer" not in text
    assert text.count('<tr class="hit">') >= 3                  # the lookup rows this input used
    # a head's λ, QK and OV views, raw scores and pattern, with TransformerLens's names for them
    assert "λ = " in text and "QK view" in text and "OV view" in text and "Raw scores" in text
    assert "blocks.0.attn.hook_pattern[0, 0]" in text and "blocks.0.attn.hook_q[0, :, 0]" in text
    assert "(L0H0)" in text and "blocks.1.hook_resid_post" in text and "blocks.0.hook_resid_pre" in text
    assert "Neurons:" in text and "blocks.1.mlp.hook_post" in text   # MLP 2's hidden units and their activity
    assert 'href="#head-1-1"' in text and 'id="line-7"' in text      # source lines link to their blocks
    outputs = text.split("6. The outputs", 1)[1]
    assert outputs.count("1 1 0 1") == 2 and "✓" in outputs and "differs" not in outputs


def test_lambda_matches_the_config(parity):
    from hardwire.compiler.pipeline import compile_file
    scale = compile_file(str(PROGRAMS / "parity_count.hw"), {"n": 8}).config["layers"][0]["scales"][0]
    assert f"λ = {scale:g}" in parity[1]


def test_subleq_step_page(subleq):
    out, text = subleq
    self_contained(out, text)
    for sel in SUBLEQ_HEADS:
        assert sel in text, sel
    assert "m := if indices == b & !out then d else m" in text and "pc := if !out & d <= 0 then c else pc + 3" in text
    outputs = text.split("6. The outputs", 1)[1]
    for name in ("memory", "pc_final", "emitted", "steps", "halted"):
        assert name in outputs
    assert "6 -1 3 7 7 -1 5 0" in outputs and "3 3 3 3 3 3 3 3" in outputs  # after one pass: pc = 3
    assert "-1 -1 -1 -1 -1 -1 -1 -1" in outputs                             # after the whole run: halted
    assert "differs" not in outputs


def test_subleq_titles_labels_and_names(subleq):
    """Issue 21: no two sections share a title, no figure repeats a row label, no internal name is shown."""
    _, text = subleq
    titles = re.findall(r"<h[234][^>]*>(.*?)</h[234]>", text)
    assert [t for t, n in collections.Counter(titles).items() if n > 1] == []
    figures_have_unique_rows(text)
    seen = shown(text)
    for name in INTERNAL:
        assert name not in seen, name
    assert "halt flag" in seen and "pc < 0" in seen and "indices - 1.b0" in seen


def test_loop_steps(subleq):
    """The step control has one frame per pass, with the registers each pass reads."""
    _, text = subleq
    steps = text.split('<div class="stepper" id="loop-steps">', 1)[1].split("6. The outputs")[0]
    frames = re.findall(r'<div class="step" data-label="(pass \d+)">', steps)
    assert frames == ["pass 1", "pass 2", "pass 3"]   # two instructions, then the pass that sees the halt
    assert "it <b>halts</b> here" in steps and "it emits <code>5</code>" in steps
    assert steps.count("<td><code>pc</code></td>") == 3 and "<b>3</b>" in steps   # pc changed 0 -> 3


@pytest.mark.parametrize("args", [["parity_cc.hw", "--input", "1 0 1 1", "--param", "n=4"]])
def test_pair_layernorm_is_a_norm(args, tmp_path_factory):
    """Issue 21: parity_cc's pair LayerNorm (layers.1.norm) is presented as a norm, not as a lookup table."""
    _, text = page(tmp_path_factory, "pcc", [str(PROGRAMS / args[0]), *args[1:]])
    head = re.search(r'<h4 id="mlp-2-1">(.*?)</h4>', text).group(1)
    assert "LayerNorm 2.1" in head and "MLP" not in head
    section = text.split('<h4 id="mlp-2-1">', 1)[1].split("<h4", 1)[0]
    assert "pair LayerNorm" in section and "layers.1.norm" in section and "An exact lookup table" not in section
    assert "k-norm" in text and "LayerNorm 2.1 → parity" in text   # its box in the circuit


def test_more_rows_marker_sits_where_rows_are_skipped(tmp_path_factory):
    """Issue 21: reverse's MLP table said "… 204 more rows" between two adjacent rows. (reverse has no such
    lookup now; a map of tokens and indices has 64 rows, more than a table shows.)"""
    src = tmp_path_factory.mktemp("keys") / "keys.hw"
    src.write_text("program keys\nvocab {1, 2, 3, 4}\nmax_len 16\n"
                   "output y = map((t, i) -> t * 100 + i, tokens, indices)\n")
    _, text = page(tmp_path_factory, "keys", [str(src), "--input", "1 2 3 4 1 2 3 4 1"])
    assert "more row" in text
    for tab in re.findall(r"<table>.*?</table>", text, re.S):
        rows = re.findall(r"<tr([^>]*)>(.*?)</tr>", tab, re.S)
        marks = [i for i, (cls, _) in enumerate(rows) if 'class="gap"' in cls]
        for i in marks:
            assert i == len(rows) - 1 or 'class="gap"' not in rows[i + 1][0]


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).flatmap(
    lambda sizes: st.tuples(st.just(sizes), st.sets(st.tuples(*[st.integers(0, n - 1) for n in sizes])))))
def test_with_gaps_accounts_for_every_row(case):
    """Markers and rows together cover the whole table, in order, with a marker exactly at each skip."""
    sizes, picked = case
    spec = [(f"x{i}", tuple(range(n))) for i, n in enumerate(sizes)]
    total = 1
    for n in sizes:
        total *= n
    rows = [(c, sum(c)) for c in picked]
    out = with_gaps(rows, spec, total)
    covered, prev = 0, None
    for combo, v in out:
        if combo is None:
            assert prev != "gap" and v > 0
            covered += v
            prev = "gap"
        else:
            assert combo_index(combo, spec) == covered and v == sum(combo)
            covered += 1
            prev = "row"
    assert covered == total


def test_generation_cut_off_shows_its_stop_reason(tmp_path_factory):
    """Issue 21: a generating program cut off at max_len showed ✓ and no stop reason; it gets a step per token."""
    _, text = page(tmp_path_factory, "pcot", [str(PROGRAMS / "parity_cot.hw"), "--input", "1 0 1 1 =",
                                              "--param", "n=4"])
    outputs = text.split("The whole generation", 1)[1]
    assert "was cut off at max_len = 9" in outputs and "✓" not in outputs and "no stop token" in outputs
    steps = text.split('<div class="stepper" id="gen-steps">', 1)[1].split("6. The outputs")[0]
    frames = re.findall(r'data-label="token (\d+): ([^"]*)"', steps)
    assert [f[1] for f in frames] == ["1", "1", "0", "1"]   # the running parity of 1 0 1 1
    assert "the last position reads" in steps and "head 1.1" in steps


def test_long_generated_source_is_folded(tmp_path_factory):
    """Issue 21: turing_cot printed its 596 generated source lines before anything else."""
    _, text = page(tmp_path_factory, "tcot", [str(PROGRAMS / "turing_cot.hw"), "--input", "0 0 0"])
    program = text.split('<h2 id="program">', 1)[1].split("<h2", 1)[0]
    assert program.index("compiles to a transformer") < program.index("<details>") < program.index("<pre>")
    assert re.search(r"<summary>The program's source: \d{3} lines", program)
    assert "was cut off at max_len = 108" in text.split("The whole generation", 1)[1]   # this tape runs on


@pytest.fixture(scope="module")
def weight_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    model = folder / "subleq.safetensors"
    assert main(["compile", str(PROGRAMS / "subleq.hw"), "--param", "mem=8", "--param", "bits=4",
                 "-o", str(model)]) == 0
    return page(tmp_path_factory, "wpage", [str(model), "--input", "6 -1 3 7 7 -1 5 0"])


def test_weight_file_page(weight_page):
    """`hardwire explain M.safetensors` works from the file's tensors and header, with no program source."""
    out, text = weight_page
    self_contained(out, text)
    figures_have_unique_rows(text)
    assert "one input through a weight file" in text and "source is not in the file" in text
    for h in range(1, 4):
        assert f'id="head-1-{h}"' in text
    assert "QK view" in text and "OV view" in text and "λ = " in text and "blocks.1.attn.hook_pattern[0, 1]" in text
    assert re.findall(r'data-label="(pass \d+)"', text) == ["pass 1", "pass 2", "pass 3"]
    outputs = text.split("6. The outputs", 1)[1]
    assert "-1 -1 -1 -1 -1 -1 -1 -1" in outputs and "<code>5</code>" in outputs   # halted; emitted mem[6]


def test_weight_file_page_of_a_generating_model(tmp_path, tmp_path_factory):
    model = tmp_path / "pcot.safetensors"
    assert main(["compile", str(PROGRAMS / "parity_cot.hw"), "--param", "n=3", "-o", str(model)]) == 0
    out, text = page(tmp_path_factory, "wgen", [str(model), "--input", "1 0 1 ="])
    self_contained(out, text)
    assert re.findall(r'data-label="(token \d+: \d)"', text) == ["token 1: 1", "token 2: 1", "token 3: 0"]
    assert "was cut off at max_len = 7" in text.split("6. The outputs", 1)[1]


def test_json_summary_and_replacing_a_page(tmp_path, capsys):
    out = tmp_path / "page"
    args = ["explain", str(PROGRAMS / "histogram.hw"), "--input", "a b a", "-o", str(out), "--json"]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["program"] == "histogram" and info["page"] == str(out / "index.html") and info["files"] == 1
    (out / "stale.png").write_bytes(b"old")
    assert main(args) == 0  # an earlier page is replaced whole
    assert not (out / "stale.png").exists() and (out / "index.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["page"]


def bad(args: list[str], capsys, needle: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err


def test_bad_input_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "page"
    prog = str(PROGRAMS / "parity_count.hw")
    bad(["explain", prog, "--input", "1 2", "-o", str(out)], capsys, "not in the vocabulary")
    bad(["explain", prog, "--input", " ".join("1" * 9), "--param", "n=8", "-o", str(out)], capsys, "max_len is 8")
    bad(["explain", prog, "--input", "1", "-o", str(tmp_path / "missing" / "page")], capsys, "does not exist")
    bad(["explain", str(tmp_path / "nope.hw"), "--input", "1", "-o", str(out)], capsys, "nope.hw")
    assert list(tmp_path.iterdir()) == []  # no page, no temporary folder
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    bad(["explain", prog, "--input", "1", "-o", str(tmp_path / "notes")], capsys, "holds other files")
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["mine.txt"]
    (tmp_path / "file").write_text("x")
    bad(["explain", prog, "--input", "1", "-o", str(tmp_path / "file")], capsys, "is a file; name a folder")


def test_bad_input_to_a_weight_file(tmp_path, capsys):
    model = tmp_path / "p.safetensors"
    assert main(["compile", str(PROGRAMS / "parity_count.hw"), "--param", "n=4", "-o", str(model)]) == 0
    capsys.readouterr()
    bad(["explain", str(model), "--input", "1 2", "-o", str(tmp_path / "page")], capsys, "not in the vocabulary")
    bad(["explain", str(model), "--input", "1", "--param", "n=3", "-o", str(tmp_path / "page")], capsys,
        "--param sets a program's params; a weight file was compiled with its own")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.safetensors"]


def test_error_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr("hardwire.explain.html.Page.build", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        explain_mod.explain(str(PROGRAMS / "histogram.hw"), "a b", str(tmp_path / "page"))
    assert list(tmp_path.iterdir()) == []


def test_names_are_unique():
    assert unique(["x", "x", "y", "x"], [1, 2, 3, 1]) == ["x", "x [2]", "y", "x"]
    assert raw_labels(["_test=False", "_test=True", "_test=False"]) == ["_test=False", "_test=True",
                                                                         "_test=False [2]"]


def test_blocks_written_in_the_language():
    assert infix("-(_-(length, indices), 1)") == ("length - indices - 1", 4)
    assert infix("*(_+(x, 1), 2)")[0] == "(x + 1) * 2"
    prog = check_file(str(PROGRAMS / "dyck2.hw"))
    remember_text(prog)
    fused = fuse_maps(prog)  # `scalar((bal_round < 0) or ...)` is fused into one map: its text survives
    dipped = fused.defs["dipped"]
    assert selector(dipped.selector) == "select(indices, indices, <=)"
    assert definition(dipped)[0] == "aggregate(select(indices, indices, <=), scalar(bal_round < 0 or bal_square < 0))"
    assert combo_index((Fraction(1, 2), 1), [("a", (0, Fraction(1, 2))), ("b", (0, 1, 2))]) == 4


def test_hook_names_reproduce_the_views_with_run_with_cache(tmp_path, tmp_path_factory):
    """Every hook name on the page, looked up in the TransformerLens export's run_with_cache, gives the view the
    page draws: each head's raw scores and pattern, each layer's residual (export extra; skipped without it)."""
    pytest.importorskip("transformer_lens")
    import numpy as np
    import torch
    from hardwire.runtime.model import load

    from hardwire.explain.trace import forward
    from hardwire.export import tl as export_tl
    model = tmp_path / "h.safetensors"
    assert main(["compile", str(PROGRAMS / "dyck2.hw"), "-o", str(model)]) == 0   # heads by layer: 2, 0, 1
    tokens = list("(([])")
    _, text = page(tmp_path_factory, "hooks", [str(model), "--input", " ".join(tokens)])
    t = load(str(model), "cpu")
    export_tl.export(t, str(tmp_path / "tl"))
    ids, lengths = t.encode([tokens])
    with torch.no_grad():
        _, cache = export_tl.load_bridge(str(tmp_path / "tl")).run_with_cache(ids)
    f = forward(t, tokens)
    heads = re.findall(r"blocks\.(\d+)\.attn\.hook_pattern\[0, (\d+)\]", text)
    assert len(set(heads)) == sum(x["heads"] for x in t.config["layers"]) >= 2
    for layer, h in {(int(a), int(b)) for a, b in heads}:
        assert np.allclose(cache[f"blocks.{layer}.attn.hook_pattern"][0, h].numpy(), f.attention[layer + 1][h],
                           atol=1e-6)
        assert f"blocks.{layer}.attn.hook_q[0, :, {h}] @ blocks.{layer}.attn.hook_k[0, :, {h}].T / 2" in text
        q, k = (cache[f"blocks.{layer}.attn.hook_{n}"][0, :, h].numpy() for n in "qk")
        ours, theirs = f.scores[layer + 1][h], q @ k.T / 2
        finite = np.isfinite(ours)
        assert np.allclose(theirs[finite], ours[finite], atol=1e-4)
        assert f"head {layer + 1}.{h + 1}" in text and f"(L{layer}H{h})" in text
    for layer in {int(a) for a in re.findall(r"blocks\.(\d+)\.hook_resid_post", text)}:
        assert np.allclose(cache[f"blocks.{layer}.hook_resid_post"][0].numpy(), f.after[layer + 1], atol=1e-6)
        assert np.allclose(cache[f"blocks.{layer}.hook_resid_mid"][0].numpy(), f.mids[layer + 1], atol=1e-6)
    for layer in {int(a) for a in re.findall(r"blocks\.(\d+)\.mlp\.hook_post", text)}:
        w_in = t.p(f"layers.{layer}.mlp.W_in").numpy()
        act = cache[f"blocks.{layer}.mlp.hook_post"][0].numpy()[:, :w_in.shape[1]]
        assert np.allclose(act, np.maximum(f.mids[layer + 1] @ w_in, 0), atol=1e-5)   # the neurons drawn
