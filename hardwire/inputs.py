"""How the Python API reads its inputs: one input or a batch, and tokens of the wrong kind said in words."""
from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from hardwire.compiler.core.sops import value_key

KINDS = [(bool, "a boolean", "booleans"), (int, "an integer", "integers"), (str, "a string", "strings"),
         (Fraction, "a fraction", "fractions"), (tuple, "a tuple", "tuples"), (type(None), "none", "none")]


def is_batch(inputs) -> bool:
    """A list (or tuple) of inputs rather than one input: its items are all token lists or strings, and, when all
    are strings, one of them holds two or more tokens (["x y", "z"]). A list of one-word strings (["c", "c", "a"])
    is one input of those tokens: the API took it so before batches of strings, and it reads as tokens."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        return False
    if all(isinstance(x, (list, tuple)) or isinstance(x, str) for x in inputs):
        return any(isinstance(x, (list, tuple)) or len(x.split()) != 1 for x in inputs)
    return False


def kind(v) -> tuple[str, str]:
    """(singular, plural) words for a token's kind: ("an integer", "integers"); 1 and true are different kinds."""
    t = bool if isinstance(v, bool) else next((t for t, _, _ in KINDS if isinstance(v, t)), None)
    for k, one, many in KINDS:
        if k is t:
            return one, many
    return f"a {type(v).__name__}", f"{type(v).__name__} values"


def wrong_kind(tokens: list, vocab: list, program: str, parse: Callable[[str], list]) -> str | None:
    """The message for the first token whose kind the vocabulary never holds (a string "3" against integers), with
    the input written the ways that work when there are some (`parse`: the CLI's reading of a string); None when
    every token's kind occurs (then the runtime checks the values)."""
    held = {kind(v)[0] for v in vocab}
    plurals = list(dict.fromkeys(kind(v)[1] for v in vocab))
    for i, tok in enumerate(tokens):
        one, _ = kind(tok)
        if one in held:
            continue
        shown = ", ".join(map(str, vocab[:8])) + (", ..." if len(vocab) > 8 else "")
        why = f"token {tok!r} at position {i} is {one}, and the vocabulary of {program} holds {' and '.join(plurals)}"
        text = " ".join(str(t) for t in tokens)
        keys = {value_key(v) for v in vocab}
        if not all(value_key(t) in keys for t in parse(text)):
            return f"{why} ({shown})"
        hint = f'pass the input as one string, "{text}"'
        if plurals == ["integers"]:
            hint += f", or as integers, {parse(text)}"
        return f"{why} ({shown}): {hint}"
    return None
