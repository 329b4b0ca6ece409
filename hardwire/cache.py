"""Compiled models cached on disk, keyed by the program text, its params and the compiler's own source.

The folder is $HARDWIRE_CACHE, else ~/.cache/hardwire. Entries are written atomically, so a crash
never leaves a half-written model; a stale entry is simply never looked up again.
"""
from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("HARDWIRE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hardwire")
    return Path(root)


def compiler_digest() -> str:
    """A hash of the compiler's sources: a change to any pass invalidates every cached model."""
    h = hashlib.sha256()
    root = Path(str(resources.files("hardwire.compiler")))
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".lark")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cached_source(stem: str, source: str) -> Path:
    """A generated program (e.g. a Turing machine's) saved in the cache folder under its hash, written once and
    whole (a temporary file, then a rename)."""
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = cache_dir() / f"{stem}-{key}.hw"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(source)
        tmp.replace(path)
    return path


def cached_generated_model(stem: str, source: str) -> str:
    """A generated program, saved in the cache folder (cached_source) and compiled there once."""
    return str(cached_model_path(str(cached_source(stem, source)), {}))


def model_cache_path(program: str, params: dict[str, int]) -> Path:
    """Where the compile of `program` with `params` by this compiler is cached (it may not be there yet)."""
    text = Path(program).read_bytes()
    key = hashlib.sha256(text + repr(sorted(params.items())).encode() + compiler_digest().encode()).hexdigest()[:20]
    stem = Path(program).stem + "".join(f"-{k}{v}" for k, v in sorted(params.items()))
    return cache_dir() / f"{stem}-{key}.safetensors"


def cached_model_path(program: str, params: dict[str, int]) -> Path:
    """Compile `program` with `params` unless an identical compile is cached; return the weight file."""
    from hardwire.compiler.check.elaborate import check_file
    from hardwire.compiler.pipeline import compile_program
    path = model_cache_path(program, params)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        compile_program(check_file(program, params)).save(str(path))
    return path
