"""`hardwire certify`: prove from a weight file's tensors that the float model decodes exactly, or say where not."""
