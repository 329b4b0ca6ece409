"""Stage 1: source text -> checked Program (Lark grammar, names, value sets, encodings; scalars, words, loops)."""
