"""Checkpoints of long runs (`--checkpoint FILE`, `--resume FILE` of `hardwire tm` and `hardwire subleq`).

A checkpoint is a safetensors file (no pickle): its metadata holds a JSON object naming the run it was made for
(`what`, in words, and `identity`, a hash of the model's cache key, the input and the dtype) and the run's state
(steps taken, values emitted, tokens generated); its tensors are a loop's residual between two passes, or the
native index decoder's state (its tokens so far, its last residual row and its heads' tables: O(key codes), not
O(tokens), beside the tokens themselves).
Files are written to a temporary name in the same folder and renamed, so a crash leaves the last whole one.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from hardwire.compiler.core.errors import HardwireError

FORMAT = "hardwire-checkpoint-1"


@dataclass
class Checkpoint:
    """A run's saved state: `state` is JSON (steps, emitted, tokens), `residual` a loop's [T, D] tensor or None,
    `tensors` any others by name (numpy or torch)."""
    what: str
    identity: str
    state: dict = field(default_factory=dict)
    residual: object = None
    tensors: dict = field(default_factory=dict)


def identity(**parts) -> str:
    """A hash of what makes two runs the same run (model, input, dtype), as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def save(path: str, ck: Checkpoint) -> None:
    """Write ck to path atomically: a temporary file in the same folder, then a rename."""
    import torch
    from safetensors.torch import save_file
    meta = {"format": FORMAT, "what": ck.what, "identity": ck.identity, "state": json.dumps(ck.state)}
    tensors = {} if ck.residual is None else {"residual": ck.residual.detach().cpu().contiguous()}
    tensors.update({k: torch.as_tensor(v).contiguous() for k, v in ck.tensors.items()})
    if not tensors:
        tensors = {"none": torch.zeros(0)}
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str, what: str, ident: str) -> Checkpoint:
    """The checkpoint at path, refused (HardwireError, exit 2) unless it was made for this run."""
    from safetensors import safe_open
    if not os.path.isfile(path):
        raise HardwireError(f"--resume {path}: no such checkpoint file")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            residual = f.get_tensor("residual") if "residual" in f.keys() else None
            others = {k: f.get_tensor(k) for k in f.keys() if k not in ("residual", "none")}
    except Exception:  # noqa: BLE001 - any unreadable file is one message
        meta, residual, others = {}, None, {}
    if meta.get("format") != FORMAT:
        raise HardwireError(f"--resume {path}: not a hardwire checkpoint (write one with --checkpoint FILE)")
    if meta.get("identity") != ident:
        made = meta.get("what", "?")
        why = "" if made != what else " (same machine, but another input, dtype or compiler)"
        raise HardwireError(f"--resume {path}: this checkpoint was made for {made}{why}, not for this run, "
                            f"{what}; resume it with the command that wrote it, or start without --resume")
    return Checkpoint(meta["what"], meta["identity"], json.loads(meta.get("state", "{}")), residual, others)


@dataclass
class Saver:
    """The `save` of a runtime LongRun that writes checkpoints of one run to `path` (None: none)."""
    path: str | None
    what: str
    ident: str
    writes: int = 0

    def write(self, state: dict, residual=None, tensors: dict | None = None) -> None:
        if self.path is not None:
            save(self.path, Checkpoint(self.what, self.ident, state, residual, tensors or {}))
            self.writes += 1
