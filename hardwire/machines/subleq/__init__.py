"""SUBLEQ: the emulator (the reference), the assembler, and the compiled computer's program."""
