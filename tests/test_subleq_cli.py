"""`hardwire subleq` and `hardwire bench subleq`: the front door of the SUBLEQ computer."""
import json
from pathlib import Path

import pytest

from hardwire.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS_HELLO = ROOT / "tests" / "data" / "subleq" / "hello.sq"  # a copy of ../shared/corpus/subleq


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARDWIRE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_hello_world(capsys):
    assert main(["subleq", str(CORPUS_HELLO), "--device", "cpu", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["text"] == "Hello, world!\n" and info["matches_reference"] is True
    assert info["steps"] == 71 and info["halted"] is True and len(info["memory"]) == 256
    assert main(["subleq", str(CORPUS_HELLO), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith("Hello, world!\n-- 71 steps, halted; matches the emulator: True")


def test_assembly_small_words_and_trace(capsys, tmp_path):
    prog = ROOT / "programs" / "subleq" / "countdown.sqa"
    trace = tmp_path / "trace.jsonl"
    assert main(["subleq", str(prog), "--asm", "--mem", "64", "--bits", "8", "--device", "cpu", "--json",
                 "--trace", str(trace)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output"] == list(range(9, -1, -1)) and info["matches_reference"]
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert len(lines) == info["steps"] and lines[-1]["m"] == info["memory"] and lines[-1]["pc"][0] < 0


def test_step_limit_exit_code(tmp_path, capsys):
    img = tmp_path / "loop.sq"
    img.write_text("0 0 0  # jumps to itself forever\n")
    assert main(["subleq", str(img), "--mem", "16", "--bits", "8", "--max-steps", "20", "--device", "cpu",
                 "--json"]) == 3
    info = json.loads(capsys.readouterr().out)
    assert info["steps"] == 20 and info["halted"] is False and info["matches_reference"]


@pytest.mark.parametrize("text,args,needle", [
    ("1 2 x", [], ":1:5: 'x' is not an integer"),
    ("1 2 300", ["--bits", "8", "--mem", "16"], "outside"),
    (" ".join(["1"] * 20), ["--mem", "16", "--bits", "8"], "raise --mem"),
    ("1 2 3", ["--mem", "1000", "--bits", "8"], "raise --bits or lower --mem"),
])
def test_bad_images(tmp_path, capsys, text, args, needle):
    img = tmp_path / "bad.sq"
    img.write_text(text)
    assert main(["subleq", str(img), *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err


def test_missing_image(capsys):
    assert main(["subleq", "/no/such/image.sq"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_bench_quick_writes_json(tmp_path, capsys):
    assert main(["bench", "subleq", "--quick", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads((tmp_path / "subleq_quick.json").read_text())
    row = data["sizes"][0]
    assert (row["mem"], row["bits"], row["layers"]) == (64, 8, 4)
    assert all(data["cpu"][f"batch_{b}"]["exact"] for b in (1, 64))
    assert isinstance(data["cpu"]["batch_1"]["steps_per_s"], (int, float))   # reported; no speed is asserted
