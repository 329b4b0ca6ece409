"""The checker's size limits: shared by the elaborator and its scalar rules (one home, so neither imports the other)."""

MAX_LEN_LIMIT = 10_000_000  # a program that reads indices lists its positions (value sets): beyond this nothing fits
LONG_MAX_LEN = 1 << 30      # one that does not (its only position row is latest's index, stored as a formula)
VALUE_BUDGET = 200_000  # largest value set (or map input product) the checker accepts
