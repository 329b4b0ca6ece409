"""hardwire.runtime: runs compiled weight files with PyTorch (the dense pass in model.py is the reference; the fast
paths in fast*.py are tested equal to it). Imports only the compiler's artifact format and core, never a tool."""
