"""A training run's directory: its options, its checkpoint, its metrics and its pictures.

Every file is written whole or not at all (the checkpoint through ``chainrule.save``,
the others to a temporary file that is renamed), so a run killed at any instant leaves
a directory that ``chainrule train --resume`` can continue.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..serialization import load, save
from ._parser import UsageError

CONFIG = "config.json"
CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
GRAD_FLOW = "grad_flow.png"
GRAPH = "graph.html"


class RunDir:
    """One run's files under ``path``.

    >>> run = RunDir.create(None, {"dataset": "digits", "model": "mlp"})   # runs/digits-mlp-<time>
    >>> run.save_checkpoint({"epoch": 1, "model": model.state_dict()})
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, out: str | None, config: dict[str, Any]) -> RunDir:
        """A new run directory (``out``, or a fresh one under ``runs/``) holding ``config``."""
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            base = Path("runs") / f"{Path(config['dataset']).stem}-{config['model']}-{stamp}"
            path, n = base, 1
            while path.exists():
                n += 1
                path = base.with_name(f"{base.name}-{n}")
        else:
            path = Path(out)
            if (path / CHECKPOINT).exists() or (path / CONFIG).exists():
                raise UsageError(f"{out!r} already holds a run: continue it with --resume {out} or "
                                 f"choose another --out")
            if path.exists() and not path.is_dir():
                raise UsageError(f"--out {out!r} is a file, not a directory")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run._write_text(CONFIG, json.dumps(config, indent=2) + "\n")
        return run

    @classmethod
    def open(cls, path: str) -> RunDir:
        """An existing run, for ``--resume``."""
        run = cls(Path(path))
        if not (run.path / CONFIG).is_file():
            raise UsageError(f"--resume {path!r}: no {CONFIG} there (not a chainrule train run directory)")
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / CONFIG).read_text())
        except ValueError as error:
            raise UsageError(f"{self.path / CONFIG}: damaged ({error})") from None

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save(state, self.path / CHECKPOINT)

    def load_checkpoint(self) -> dict[str, Any]:
        return load(self.path / CHECKPOINT)

    def save_model(self, state_dict: dict[str, Any]) -> None:
        save(state_dict, self.path / MODEL)

    def rewrite_metrics(self, history: list[dict[str, Any]]) -> None:
        """metrics.jsonl as the checkpoint knows it: on resume, lines written after the last
        checkpoint (by the killed run) are dropped, since the epochs they describe rerun."""
        self._write_text(METRICS, "".join(json.dumps(record) + "\n" for record in history))

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _write_text(self, name: str, text: str) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.path / name)
