"""The checker's size limits: shared by the elaborator and its scalar rules (one home, so neither imports the other)."""

MAX_LEN_LIMIT = 10_000_000  # positions are enumerated (value sets, position tables): beyond this nothing fits
VALUE_BUDGET = 200_000  # largest value set (or map input product) the checker accepts
