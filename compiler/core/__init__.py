"""The data types every stage shares: the program IR (sops.py), the one error type, the checker's size limits."""
