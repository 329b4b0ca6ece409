"""`hardwire export`: the same weights as ONNX (onnx.py) or a TransformerLens model (tl.py)."""
