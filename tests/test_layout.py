"""The tree shows the pipeline (issue 18): one namespace, arrows that point one way, no import cycles.

Imports are read from the source with ast (inside functions and TYPE_CHECKING blocks too), so a lazy import
cannot hide a cycle.
"""
import ast
import re
from pathlib import Path

import networkx as nx
import tomllib

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"hardwire": ROOT / "hardwire", "hardwire.compiler": ROOT / "compiler", "hardwire.runtime": ROOT / "runtime"}
# compiler/ holds the pipeline's stages (and the data types they share), nothing else
STAGES = {"__init__.py", "pipeline.py", "core", "check", "cse.py", "mask.py", "combine.py", "split.py", "encode.py",
          "wire_numeric.py", "fuse.py", "lower.py", "layout.py", "wire.py", "size_budget.py", "wire_words.py",
          "artifact.py", "validate.py", "precision.py", "interpret.py"}
LONG = 400  # a module past this many lines says why in its docstring ("Long: ...")


def modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if prefix == "hardwire" and rel[0] in ("compiler", "runtime"):
                continue
            name = ".".join((prefix,) + (rel[:-1] if rel[-1] == "__init__" else rel))
            out[name] = path
    return out


def imports(path: Path, names: set[str]) -> set[str]:
    """The project modules one file imports (`from a.b import c` counts a.b.c when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names}
    return {m for m in found if m in names}


def graph() -> nx.DiGraph:
    mods = modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        g.add_edges_from((name, m) for m in imports(path, set(mods)) if m != name)
    return g


def test_no_import_cycles():
    g = graph()
    packages = {n for n, p in modules().items() if p.name == "__init__.py"}
    g.remove_nodes_from(packages - {"hardwire"})  # a package's own __init__ is its parent, not an import
    cycles = list(nx.simple_cycles(g))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_arrows_point_one_way():
    """tools -> compiler and runtime -> the compiler's core; the compiler never imports the runtime or a tool."""
    for a, b in graph().edges:
        if a.startswith("hardwire.compiler"):
            assert b.startswith("hardwire.compiler"), f"{a} imports {b}"
        if a.startswith("hardwire.runtime"):
            assert b.startswith(("hardwire.runtime", "hardwire.compiler")), f"{a} imports {b}"


def test_one_namespace():
    """No relative imports, and nothing imports the folders by their bare names (`compiler`, `runtime`)."""
    for path in [*modules().values(), *ROOT.joinpath("tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import"
                mod = node.module or ""
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            else:
                continue
            assert mod.split(".")[0] not in ("compiler", "runtime"), f"{path}: imports {mod}"


def test_compiler_holds_the_pipeline_only():
    entries = {p.name for p in (ROOT / "compiler").iterdir() if p.name != "__pycache__"}
    assert entries == STAGES, f"not a pipeline stage: {sorted(entries - STAGES)}; missing: {sorted(STAGES - entries)}"


def test_long_modules_say_why():
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        if lines > LONG:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "Long:" in doc, f"{name} has {lines} lines and no 'Long: <reason>' in its docstring"


def test_every_package_is_installed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {n for n, p in modules().items() if p.name == "__init__.py"}
    assert set(cfg["packages"]) == packages
    assert cfg["package-dir"] == {k: v.relative_to(ROOT).as_posix() for k, v in FOLDERS.items()}
    assert cfg["package-data"] == {"hardwire.compiler.check": ["grammar.lark"]}


def test_a_primitive_is_one_entry():
    """docs/architecture.md's claim: an elementwise primitive is one entry in compiler/check/primitives.py. A fresh
    interpreter adds `sq` there before anything else is imported; a program using it then checks, compiles, and
    its model agrees with the interpreter (and the error for a wrong argument count says the entry's arity)."""
    import subprocess
    import sys
    code = '''
import hardwire.compiler.check.primitives as p
p.ELEMENTWISE["sq"] = p.Primitive(lambda x: x * x, 1, 1, "one value")
import hardwire
m = hardwire.compile_source("program s\\nvocab {1, 2, 3}\\nmax_len 4\\noutput y = sq(tokens)\\n")
assert m.check(samples=40).mismatches == 0
assert m("3 1 2")["outputs"] == {"y": [9, 1, 4]}
try:
    hardwire.compile_source("program s\\nvocab {1, 2}\\nmax_len 4\\noutput y = sq(tokens, tokens)\\n")
except hardwire.HardwireError as e:
    assert "sq takes one value" in str(e), e
else:
    raise AssertionError("two arguments accepted")
print("ok")
'''
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "ok", r.stderr[-2000:]


def test_architecture_doc_names_every_module():
    """docs/architecture.md's tree has a line for every module, so the map stays the territory."""
    tree = (ROOT / "docs" / "architecture.md").read_text().split("## The tree", 1)[1].split("\n## ", 1)[0]
    missing = [name for name, path in modules().items()
               if path.name != "__init__.py" and not re.search(rf"\b{re.escape(path.stem)}\b", tree)]
    assert not missing, f"docs/architecture.md's tree does not name: {missing}"
