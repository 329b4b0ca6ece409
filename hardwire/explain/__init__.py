"""`hardwire explain`: an HTML page walking one input through a compiled model (walk.py computes, html.py writes)."""
