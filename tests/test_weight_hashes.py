"""Every program's weight file is byte-identical to the one recorded in tests/data/weight_hashes.json.

Recorded before the layout move (issue 18), so a refactor that changes a single weight or header byte fails here.
A change that means to alter weight files re-records them with `python tests/test_weight_hashes.py --record` and
says why in its commit.
"""
import hashlib
import json
import sys
from pathlib import Path

import pytest
from hardwire.compiler.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent
HASHES = Path(__file__).resolve().parent / "data" / "weight_hashes.json"
PROGRAMS = sorted((ROOT / "programs").glob("*.hw"))


def file_hash(program: Path, tmp: Path) -> str:
    out = tmp / f"{program.stem}.safetensors"
    compile_file(str(program)).save(str(out))
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_every_program_is_recorded():
    assert sorted(json.loads(HASHES.read_text())) == [p.stem for p in PROGRAMS]


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_weight_file_is_unchanged(program, tmp_path):
    assert file_hash(program, tmp_path) == json.loads(HASHES.read_text())[program.stem]


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        HASHES.write_text(json.dumps({p.stem: file_hash(p, Path(d)) for p in PROGRAMS}, indent=1) + "\n")
    print(f"recorded {len(PROGRAMS)} hashes in {HASHES}")
