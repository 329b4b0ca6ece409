"""The docs run as written: docs/tutorial.md top to bottom, and every block of README.md and docs/*.md that shows
a command or a Python session, in order, in a fresh copy of the checkout (its tracked and unignored files).

Every fenced block says what it is, in its info string:
- ```sh: a terminal session: `$ command` lines, each followed by the output it must print (stdout and stderr;
  `...` matches anything; no lines shown: output not checked). A command exits 0 unless it ends with
  `# exit code N`.
- ```python: doctests (`>>>`), sharing one namespace per document.
- ```hw file=NAME writes NAME, ```hw append=NAME adds to it (a bare ```hw is a program shown; tests/test_docs.py
  compiles those of docs/language.md, except the ones tagged `refused`: a mistake whose message a later block shows).
- ```text: text that is not a command (a list of commands to read, a file excerpt, output).
- `illustrative` after the language (```sh illustrative, ```python illustrative): shown, not run; for what
  cannot run here (installing packages, rewriting bench/results, hours of compute). `slow` after the language:
  run only by the slow test (`pytest -m slow`). `export`: needs the export extra (skipped without it).
An unlabelled block fails test_every_block_says_what_it_is, so nothing with shown output escapes the tests.
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
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.S | re.M)
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "tutorial.md")
KINDS = {"sh", "python", "hw", "text"}
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


def shims(folder: Path, root: Path = ROOT) -> dict[str, str]:
    """An environment whose `hardwire` runs this checkout's CLI, and whose `make` only prints what it would run
    (a real `make install` would reinstall into the environment the suite runs in)."""
    folder.mkdir()
    for name, line in [("hardwire", f'exec "{sys.executable}" -m hardwire "$@"'),
                       ("make", f'exec "{shutil.which("make") or "make"}" -n -C "{root}" "$@"')]:
        p = folder / name
        p.write_text(f"#!/bin/sh\n{line}\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    pythonpath = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    # TQDM_DISABLE: a loop's progress bar shows only when a run takes over 2 s, so it depends on the machine's load;
    # the docs show the output without it
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": pythonpath,
            "TQDM_DISABLE": "1"}


def run_shell(body: str, line: int, cwd: Path, env: dict, doc: str = "tutorial.md") -> None:
    checker = doctest.OutputChecker()
    for cmd, want in sessions(body):
        m = EXIT.search(cmd)
        code = int(m[1]) if m else 0
        r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        got = "".join(ln.rstrip() + "\n" for ln in (r.stdout + r.stderr).splitlines())  # docs hold no trailing spaces
        assert r.returncode == code, f"{doc}:{line}: `{cmd}` exited {r.returncode}, not {code}:\n{got}"
        if want is not None:
            assert checker.check_output(want, got, FLAGS), \
                f"{doc}:{line}: `{cmd}` printed\n{got}\nbut {doc} shows\n{want}"


def checkout_copy(dest: Path) -> Path:
    """A fresh copy of this checkout: the files git tracks plus the untracked ones it does not ignore (no build
    outputs, caches or bench runs), as a clone with the working tree's edits would hold."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout: everything but the usual droppings
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".*_cache"))
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def words(info: str) -> set[str]:
    return set(info.replace("=", " ").split())


def run_doc(path: Path, work: Path, env: dict, slow: bool = False) -> int:
    """Run one document's blocks in order in `work`; returns how many blocks ran. Each kind as the module says."""
    globs: dict = {"__name__": path.stem}
    ran = 0
    for lang, info, body, line in blocks(path):
        tags = words(info)
        if lang not in ("sh", "python", "hw") or "illustrative" in tags or ("slow" in tags) != slow:
            continue
        if "export" in tags:
            pytest.importorskip("transformer_lens")
            pytest.importorskip("onnxruntime")
        if lang == "sh":
            run_shell(body, line, work, env, path.name)
        elif lang == "python":
            run_python(body, line, f"{path.name}:{line}", globs)
        else:
            mode, _, name = (info.split() or [""])[0].partition("=")
            if not name:
                continue
            assert mode in ("file", "append"), f"{path.name}:{line}: a hw block takes file= or append="
            with open(work / name, "w" if mode == "file" else "a") as f:
                f.write(body)
        ran += 1
    return ran


def run_python(body: str, line: int, name: str, globs: dict) -> None:
    test = doctest.DocTestParser().get_doctest(body, globs, name, name, line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    globs.update(test.globs)  # get_doctest works on a copy; later blocks see this block's names
    assert runner.failures == 0, "".join(report)


def test_tutorial_runs(tmp_path, monkeypatch):
    """docs/tutorial.md top to bottom in a fresh copy of the checkout: every command, its output, every doctest."""
    work = checkout_copy(tmp_path / "work")
    env = shims(tmp_path / "bin", work)
    monkeypatch.chdir(work)
    assert run_doc(TUTORIAL, work, env) >= 20
    assert {lang for lang, *_ in blocks(TUTORIAL)} >= {"sh", "python", "hw"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_runs(doc, tmp_path, monkeypatch):
    """Every runnable block of README.md and docs/*.md, in order, in a fresh copy of the checkout."""
    work = checkout_copy(tmp_path / "work")
    env = shims(tmp_path / "bin", work)
    monkeypatch.chdir(work)
    run_doc(doc, work, env)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS + [TUTORIAL] if any("slow" in words(b[1]) for b in blocks(d))],
                         ids=lambda p: p.name)
def test_doc_slow_blocks_run(doc, tmp_path, monkeypatch):
    work = checkout_copy(tmp_path / "work")
    env = shims(tmp_path / "bin", work)
    monkeypatch.chdir(work)
    assert run_doc(doc, work, env, slow=True) > 0


@pytest.mark.parametrize("doc", DOCS + [TUTORIAL], ids=lambda p: p.name)
def test_every_block_says_what_it_is(doc):
    """No unlabelled block, no command shown outside a session, no Python outside a doctest unless illustrative."""
    for lang, info, body, line in blocks(doc):
        where = f"{doc.name}:{line}"
        assert lang in KINDS, f"{where}: label the block ```sh, ```python, ```hw or ```text (got {lang!r})"
        tags = words(info)
        if lang == "sh" and "illustrative" not in tags:
            assert body.startswith("$ "), f"{where}: a ```sh block is a session of `$ command` lines"
        if lang == "python" and "illustrative" not in tags:
            assert ">>>" in body, f"{where}: a ```python block is a doctest (>>>), or says ```python illustrative"
        if lang == "text":
            assert not any(ln.startswith("$ ") for ln in body.splitlines()), \
                f"{where}: commands with output belong in a ```sh session"


def test_tutorial_explains_a_model():
    text = TUTORIAL.read_text()
    section = text.split("## 5. Explaining a model", 1)[1].split("\n## ", 1)[0]
    assert "$ hardwire explain counts.hw" in section and "one self-contained file" in section
