"""What the page calls each value and each residual dimension: the program's names, or for an unnamed value
its expression (`pc < 0`, `indices - 1`), never the compiler's internal labels (`_test`, `_word`, `__halted`).

Two different values that read the same get a `[2]`, `[3]` suffix, so no two rows of a figure share a label.
"""
from __future__ import annotations

from hardwire.compiler.core.sops import Map, Register, SOp
from hardwire.explain.text import NAME, definition

FLAGS = {"halted": "halt flag", "emit_on": "emit flag", "emit_val": "emit value"}  # a loop's hidden registers


def value_name(s: SOp, prog) -> str:
    """The program's name for `s`, or its expression where the program gave it none."""
    if isinstance(s, Register) and s.label.startswith("__") and prog.loop is not None:
        kinds = {r.label: k for k, r in prog.loop.flags.items()}
        return FLAGS.get(kinds.get(s.label, ""), s.label.strip("_"))
    if NAME.match(s.label) and not s.label.startswith("_"):
        return s.label
    text = definition(s)[0]
    if isinstance(s, Map) and text.startswith("first true case of "):
        text = "first case of " + text[len("first true case of "):]
    return text


def unique(names: list[str], keys: list) -> list[str]:
    """`names` with a `[k]` suffix on a name that different keys share (the first keeps it bare)."""
    seen: dict[str, list] = {}
    out = []
    for n, k in zip(names, keys):
        owners = seen.setdefault(n, [])
        if k not in owners:
            owners.append(k)
        i = owners.index(k)
        out.append(n if i == 0 else f"{n} [{i + 1}]")
    return out


def dim_labels(labels: list[str], owners: dict[int, tuple], sops: dict, prog) -> list[str]:
    """Every residual dim's label in the program's words: the value's name plus the compiler's suffix
    (`=True`, `.b0`, `.frac`); owners maps a dim to (its value's key, ...), sops a key to its SOp. Two values
    both written `pc < 0` become `(pc < 0)=True` and `(pc < 0) [2]=True`."""
    bases, suffixes, keys = [], [], []
    for d, label in enumerate(labels):
        key = owners.get(d, (d,))[0]
        s = sops.get(key)
        if s is None:
            base, suffix = label.lstrip("_") or label, ""
        else:
            suffix = label[len(s.label):] if label.startswith(s.label) else ""
            base = value_name(s, prog)
            if suffix.startswith("=") and " " in base and not (base.startswith("(") and base.endswith(")")):
                base = f"({base})"
        bases.append(base)
        suffixes.append(suffix)
        keys.append(key[0] if isinstance(key, tuple) else key)  # a value's .frac dim is the same value
    return [b + s for b, s in zip(unique(bases, keys), suffixes)]


def raw_labels(labels: list[str]) -> list[str]:
    """A weight file's labels, made unique where the compiler repeated one (`_test=False` twice)."""
    return unique([lab for lab in labels], list(range(len(labels)))) if len(set(labels)) < len(labels) else \
        list(labels)
