"""`hardwire explain`: the page for a plain program and for one SUBLEQ step, its figures, and its error paths."""
import html
import json
import re
import sys
from pathlib import Path

import pytest
from hardwire.compiler.check.elaborate import check_file
from hardwire.compiler.fuse import fuse_maps

from hardwire.cli.main import main
from hardwire.explain import page as explain_mod
from hardwire.explain.text import definition, infix, remember_text, selector

pytest.importorskip("matplotlib")
PROGRAMS = Path(__file__).resolve().parent.parent / "programs"
PNG = b"\x89PNG\r\n\x1a\n"
SUBLEQ_HEADS = ["select(indices, pc, ==)", "select(indices - 1, pc, ==)", "select(indices - 2, pc, ==)",
                "select(indices, a, ==)", "select(indices, b, ==)"]


def page(tmp_path_factory, name: str, args: list[str]) -> tuple[Path, str]:
    """Run `hardwire explain` into a fresh folder: (the folder, the page as text, entities unescaped)."""
    out = tmp_path_factory.mktemp(name) / "page"
    assert main(["explain", *args, "-o", str(out)]) == 0
    return out, html.unescape((out / "index.html").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    return page(tmp_path_factory, "parity", [str(PROGRAMS / "parity_count.hw"), "--input", "1 0 1 1",
                                             "--param", "n=8"])


@pytest.fixture(scope="module")
def subleq(tmp_path_factory):
    # mem[6] is printed (A=6, B=-1), then 7 7 -1 zeroes mem[7] and jumps to -1: halt after 2 steps
    return page(tmp_path_factory, "subleq", [str(PROGRAMS / "subleq.hw"), "--input", "6 -1 3 7 7 -1 5 0",
                                             "--param", "mem=8", "--param", "bits=4"])


def images(out: Path, text: str) -> list[str]:
    """Every image the page shows: each exists beside it, relative, and is a valid PNG that loads."""
    from PIL import Image
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert srcs and len(srcs) == len(set(srcs))
    for src in srcs:
        assert "/" not in src and src.endswith(".png"), src
        data = (out / src).read_bytes()
        assert data.startswith(PNG), src
        with Image.open(out / src) as im:
            im.load()
            assert im.width > 100 and im.height > 100, (src, im.size)
    assert sorted(srcs) == sorted(p.name for p in out.glob("*.png"))
    return srcs


def self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text and "<link" not in text and "http://" not in text and "https://" not in text
    assert "<style>" in text


def test_parity_page(parity):
    out, text = parity
    self_contained(text)
    srcs = images(out, text)
    for layer in range(3):  # the embedding and both layers
        assert f"residual_{layer}.png" in srcs
    assert "graph.png" in srcs and "head_1_1.png" in srcs and len(srcs) == 5
    assert "select(tokens, 1, ==)" in text                      # the one head's selector, as written
    assert "ones = width(select(tokens, 1, ==))" in text        # the program source
    assert "parity = ones % 2" in text                          # the MLP's formula
    assert "d_model = 16" in text and "1 layer" not in text
    # the lookup table of `parity`: 9 rows (ones = 0..8), the ones this input used highlighted
    assert text.count('<tr class="hit">') >= 3
    # the outputs next to the interpreter's
    outputs = text.split("5. The outputs", 1)[1]
    assert outputs.count("1 1 0 1") == 2 and "✓" in outputs and "differs" not in outputs


def test_subleq_step_page(subleq):
    out, text = subleq
    self_contained(text)
    srcs = images(out, text)
    assert [f"residual_{i}.png" for i in range(5)] == sorted(s for s in srcs if s.startswith("residual"))
    assert len([s for s in srcs if s.startswith("head_")]) == 5
    assert "one pass of the loop body" in text
    for sel in SUBLEQ_HEADS:
        assert sel in text, sel
    assert "m := if indices == b & !out then d else m" in text and "pc := if !out & d <= 0 then c else pc + 3" in text
    outputs = text.split("5. The outputs", 1)[1]
    for name in ("memory", "pc_final", "emitted", "steps", "halted"):
        assert name in outputs
    assert "6 -1 3 7 7 -1 5 0" in outputs and "3 3 3 3 3 3 3 3" in outputs  # after one pass: pc = 3
    assert "-1 -1 -1 -1 -1 -1 -1 -1" in outputs                             # after the whole run: halted
    assert "differs" not in outputs


def test_json_summary_and_replacing_a_page(tmp_path, capsys):
    out = tmp_path / "page"
    args = ["explain", str(PROGRAMS / "histogram.hw"), "--input", "a b a", "-o", str(out), "--json"]
    assert main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["program"] == "histogram" and info["page"] == str(out / "index.html")
    assert info["images"] == 4  # the graph, one head, the residual after the embedding and after layer 1
    (out / "stale.png").write_bytes(PNG)
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


def test_error_while_drawing_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr("hardwire.explain.draw.attention", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        explain_mod.explain(str(PROGRAMS / "histogram.hw"), "a b", str(tmp_path / "page"))
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    bad(["explain", str(PROGRAMS / "histogram.hw"), "--input", "a", "-o", str(tmp_path / "page")], capsys,
        "pip install hardwire[viz]")
    assert list(tmp_path.iterdir()) == []


def test_blocks_written_in_the_language():
    assert infix("-(_-(length, indices), 1)") == ("length - indices - 1", 4)
    assert infix("*(_+(x, 1), 2)")[0] == "(x + 1) * 2"
    prog = check_file(str(PROGRAMS / "dyck2.hw"))
    remember_text(prog)
    fused = fuse_maps(prog)  # `scalar((bal_round < 0) or ...)` is fused into one map: its text survives
    dipped = fused.defs["dipped"]
    assert selector(dipped.selector) == "select(indices, indices, <=)"
    assert definition(dipped)[0] == "aggregate(select(indices, indices, <=), scalar(bal_round < 0 or bal_square < 0))"
