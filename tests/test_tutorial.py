"""docs/tutorial.md runs as written: its ```sh sessions, ```python doctests and ```hw files, in order, in a temp dir.

A ```sh block is a terminal session: `$ command` lines, each followed by the output it must print
(stdout and stderr; `...` matches anything; no lines shown: output not checked). A command exits 0
unless it ends with `# exit code N`. ```python blocks are doctests sharing one namespace.
```hw file=NAME writes NAME, ```hw append=NAME adds to it. The README's ```python example runs too.
"""
import doctest
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)
EXIT = re.compile(r"#\s*exit code (\d+)\s*$")
FLAGS = doctest.ELLIPSIS


def blocks(path: Path) -> list[tuple[str, str, str, int]]:
    """(language, info after it, body, line number) for every fenced block."""
    text = path.read_text()
    return [(m[1], m[2].strip(), m[3], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def sessions(body: str) -> list[tuple[str, str | None]]:
    """`$ command` lines with the output shown after each (None when none is shown)."""
    out: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            assert out, f"output before any command: {line!r}"
            out[-1][1].append(line)
    return [(cmd, "\n".join(lines) + "\n" if lines else None) for cmd, lines in out]


def shims(folder: Path) -> dict[str, str]:
    """An environment whose `hardwire` runs this checkout's CLI, and whose `make` only prints what it would run
    (a real `make install` would reinstall into the environment the suite runs in)."""
    folder.mkdir()
    for name, line in [("hardwire", f'exec "{sys.executable}" -m hardwire "$@"'),
                       ("make", f'exec "{shutil.which("make") or "make"}" -n -C "{ROOT}" "$@"')]:
        p = folder / name
        p.write_text(f"#!/bin/sh\n{line}\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": pythonpath}


def run_shell(body: str, line: int, cwd: Path, env: dict) -> None:
    checker = doctest.OutputChecker()
    for cmd, want in sessions(body):
        m = EXIT.search(cmd)
        code = int(m[1]) if m else 0
        r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        got = r.stdout + r.stderr
        assert r.returncode == code, f"tutorial.md:{line}: `{cmd}` exited {r.returncode}, not {code}:\n{got}"
        if want is not None:
            assert checker.check_output(want, got, FLAGS), \
                f"tutorial.md:{line}: `{cmd}` printed\n{got}\nbut the tutorial shows\n{want}"


def run_python(body: str, line: int, name: str, globs: dict) -> None:
    test = doctest.DocTestParser().get_doctest(body, globs, name, name, line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    globs.update(test.globs)  # get_doctest works on a copy; later blocks see this block's names
    assert runner.failures == 0, "".join(report)


def test_tutorial_runs(tmp_path, monkeypatch):
    work = tmp_path / "work"
    shutil.copytree(ROOT / "programs", work / "programs")
    env = shims(tmp_path / "bin")
    monkeypatch.chdir(work)
    globs: dict = {}
    seen = set()
    for lang, info, body, line in blocks(TUTORIAL):
        seen.add(lang)
        if lang == "sh":
            run_shell(body, line, work, env)
        elif lang == "python":
            run_python(body, line, f"tutorial.md:{line}", globs)
        elif lang == "hw":
            mode, _, name = info.partition("=")
            assert mode in ("file", "append") and name, f"tutorial.md:{line}: a hw block needs file= or append="
            with open(work / name, "w" if mode == "file" else "a") as f:
                f.write(body)
    assert {"sh", "python", "hw"} <= seen


def test_tutorial_explains_a_model():
    text = TUTORIAL.read_text()
    section = text.split("## 5. Explaining a model", 1)[1].split("\n## ", 1)[0]
    assert "$ hardwire explain counts.hw" in section and "one self-contained file" in section


@pytest.mark.parametrize("doc", ["README.md"])
def test_readme_python_example(doc, monkeypatch):
    monkeypatch.chdir(ROOT)
    found = [(body, line) for lang, _, body, line in blocks(ROOT / doc) if lang == "python"]
    assert found, f"{doc} has no python example"
    for body, line in found:
        run_python(body, line, f"{doc}:{line}", {})
