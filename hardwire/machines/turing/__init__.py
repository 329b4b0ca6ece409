"""Turing machines: the spec format and simulator (tm.py), the looped and chain-of-thought builders."""
