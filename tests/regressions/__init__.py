"""Minimal programs for the bugs found by the fuzzer (tests/fuzz_programs.py); see docs/fuzzing.md."""
