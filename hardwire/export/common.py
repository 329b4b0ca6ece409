"""What the ONNX and TransformerLens exports share: float32 weights and their vocabulary JSON's common fields."""
from __future__ import annotations

import numpy as np


def f32(t) -> np.ndarray:
    """A weight tensor as a float32 numpy array on the CPU (what both export formats store)."""
    return t.detach().cpu().numpy().astype(np.float32)


def one_pass(cfg: dict) -> bool:
    """Whether an export holds only one forward pass of a looped or generating program (its driver is not exported)."""
    return "loop" in cfg or "generate" in cfg


def vocab_fields(model, fmt: str) -> dict:
    """The vocabulary JSON fields both exports write (token ids, word bits, labels, outputs, config), one copy."""
    cfg = model.config
    word = bool(cfg.get("word_vocab"))
    return {"format": fmt, "program": cfg["program"], "bos_id": 0, "padding_id": 0,
            "token_ids": None if word else dict(model.token_id), "word_bits": cfg["word_bits"] if word else None,
            "one_pass": one_pass(cfg), "labels": model.labels, "outputs": model.outputs, "config": cfg}
