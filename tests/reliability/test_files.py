"""Files: a save killed at any moment leaves the old or the new checkpoint, never a broken
one; damaged bytes (truncated, bit-flipped, a foreign or lying header, a huge declared size)
are refused by chainrule's own error, quickly, and the model is never changed by them."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn

# ------------------------------------------------------------------ killed saves

WRITER = textwrap.dedent("""
    import sys
    import chainrule as cr
    path, step = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    while True:
        step += 1
        # every entry says which step wrote it: a checkpoint mixing two saves is detectable
        cr.save({"step": step, "w": cr.full((512, 1024), float(step)),
                 "optim": {"state": {0: {"m": cr.full((4096,), float(step))}}, "lr": 0.1}},
                path)
        print(step, flush=True)
""")


def _consistent(path: Path) -> int:
    """The step of the checkpoint at ``path``; fails unless every entry agrees."""
    state = cr.load(path)
    step = state["step"]
    assert state["w"].shape == (512, 1024) and state["optim"]["lr"] == 0.1
    assert (state["w"].numpy() == step).all()
    assert (state["optim"]["state"][0]["m"].numpy() == step).all()
    return step


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_a_killed_save_leaves_the_old_or_the_new_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.safetensors"
    cr.save({"step": 0, "w": cr.full((512, 1024), 0.0),
             "optim": {"state": {0: {"m": cr.full((4096,), 0.0)}}, "lr": 0.1}}, path)
    rng = np.random.default_rng(0)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    step, completed_saves = 0, 0
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, str(script), str(path), str(step)],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.25)))  # somewhere in a save, or between two
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        done = [int(line) for line in out.split()]
        completed_saves += len(done)
        found = _consistent(path)
        # the last save that finished, or the one after it if the kill came after its rename
        last = done[-1] if done else step
        assert found in (last, last + 1), (found, last)
        step = found
        # nothing but the checkpoint and, at worst, the killed save's temporary files
        for leftover in tmp_path.iterdir():
            assert leftover.name in ("checkpoint.safetensors", "writer.py") or (
                leftover.name.startswith(".checkpoint.safetensors.")
                and leftover.name.endswith(".tmp")), leftover.name
    assert completed_saves > 0  # the kills did not all land before the first save


# ------------------------------------------------------------------ damaged bytes

def _model(seed: int) -> nn.Module:
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.BatchNorm1d(5), nn.Linear(5, 3))


def _snapshot(model: nn.Module) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _checkpoint_bytes(tmp_path: Path) -> bytes:
    model = _model(0)
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    model(cr.randn(4, 6)).sum().backward()
    optimizer.step()
    path = tmp_path / "good.safetensors"
    cr.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "epoch": 3}, path)
    return path.read_bytes()


def _header(data: bytes) -> tuple[int, dict]:
    (length,) = struct.unpack("<Q", data[:8])
    return length, json.loads(data[8:8 + length])


def _with_header(data: bytes, header: dict) -> bytes:
    length, _ = _header(data)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + length:]


def _damaged(data: bytes) -> list[tuple[str, bytes]]:
    """Truncations, bit flips and lying headers of a good checkpoint."""
    rng = np.random.default_rng(0)
    length, header = _header(data)
    cases = [(f"truncated to {n} bytes", data[:n]) for n in
             sorted({*range(0, 24), *rng.integers(0, len(data), 60).tolist(), 8 + length,
                     len(data) - 1})]
    for position in sorted({*rng.integers(0, 8 + length, 150).tolist(),
                            *rng.integers(8 + length, len(data), 150).tolist()}):
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(0, 8))
        cases.append((f"bit flipped at byte {position}", bytes(flipped)))
    first = next(k for k in header if k != "__metadata__")
    lies = {
        "header length 2**63": struct.pack("<Q", 2 ** 63) + data[8:],
        "header length past the end": struct.pack("<Q", len(data)) + data[8:],
        "header length 0": struct.pack("<Q", 0) + data[8:],
        "not JSON": struct.pack("<Q", 5) + b"hello" + data[8 + length:],
        "JSON list": struct.pack("<Q", 2) + b"[]" + data[8 + length:],
        "a pickle": b"\x80\x04\x95" + data[3:],
        "empty file": b"",
        "zeros": bytes(len(data)),
    }
    edits = {
        "huge shape": lambda h: h[first].update(shape=[10 ** 12, 10 ** 12]),
        "huge offsets": lambda h: h[first].update(data_offsets=[0, 10 ** 15]),
        "negative offset": lambda h: h[first].update(data_offsets=[-8, 0]),
        "unknown dtype": lambda h: h[first].update(dtype="F128"),
        "no offsets": lambda h: h[first].pop("data_offsets"),
        "metadata not a dict": lambda h: h.update(__metadata__=[1, 2]),
        "tree not JSON": lambda h: h["__metadata__"].update({"chainrule.tree": "{oops"}),
        "tree names a missing tensor": lambda h: h["__metadata__"].update(
            {"chainrule.tree": json.dumps({"tensor": "nowhere"})}),
        "tree with an unknown tag": lambda h: h["__metadata__"].update(
            {"chainrule.tree": json.dumps({"pickle": "x"})}),
        "checksum changed": lambda h: h["__metadata__"].update({"chainrule.crc32": "00000000"}),
        "another format": lambda h: h["__metadata__"].update({"chainrule.format": "99"}),
    }
    for name, edit in edits.items():
        changed = json.loads(json.dumps(header))
        edit(changed)
        lies[name] = _with_header(data, changed)
    return cases + list(lies.items())


def test_damaged_checkpoints_are_refused_quickly_and_leave_the_model_alone(tmp_path: Path) -> None:
    data = _checkpoint_bytes(tmp_path)
    original = cr.load(tmp_path / "good.safetensors")
    target = _model(1)
    before = _snapshot(target)
    path = tmp_path / "damaged.safetensors"
    refused = 0
    for name, damaged in _damaged(data):
        path.write_bytes(damaged)
        start = time.perf_counter()
        try:
            state = cr.load(path)
        except RuntimeError as error:
            assert str(error).startswith("chainrule.load: "), (name, error)
            assert "'" + str(path) + "'" in str(error), (name, error)  # names the file
            refused += 1
        else:
            # only a change that means nothing (JSON whitespace in the header) may load, and
            # then it loads exactly what was saved
            assert _same(_flat(state), _flat(original)), name
            target.load_state_dict(state["model"])
            target.load_state_dict({k: cr.tensor(v) for k, v in before.items()})
        assert time.perf_counter() - start < 1.0, f"{name}: took over a second"
        assert _same(_snapshot(target), before), f"{name}: the model changed"
    assert refused > 300


def _flat(tree: object, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out: dict = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}/{k}"))
        return out
    if isinstance(tree, (list, tuple)):
        return _flat(dict(enumerate(tree)), prefix)
    return {prefix: tree.numpy() if isinstance(tree, cr.Tensor) else np.asarray(tree)}


def test_damaged_bytes_from_a_file_object_are_refused_too(tmp_path: Path) -> None:
    import io

    data = _checkpoint_bytes(tmp_path)
    for name, damaged in _damaged(data)[::7]:
        try:
            cr.load(io.BytesIO(damaged))
        except RuntimeError as error:
            assert str(error).startswith("chainrule.load: "), (name, error)


def test_a_checkpoint_of_another_model_leaves_the_model_alone(tmp_path: Path) -> None:
    other = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    cr.save(other.state_dict(), tmp_path / "other.safetensors")
    target = _model(1)
    before = _snapshot(target)
    with pytest.raises(RuntimeError, match="size mismatch|Missing key|Unexpected key"):
        target.load_state_dict(cr.load(tmp_path / "other.safetensors"))
    assert _same(_snapshot(target), before)


def test_saving_over_a_checkpoint_that_is_being_read(tmp_path: Path) -> None:
    """A reader holding the old file keeps reading the old contents while a save replaces it
    (the save writes a new file and renames it over the old one)."""
    path = tmp_path / "c.safetensors"
    cr.save({"w": cr.full((1000,), 1.0)}, path)
    with open(path, "rb") as reader:
        cr.save({"w": cr.full((1000,), 2.0)}, path)
        old = reader.read()
    assert cr.load(path)["w"].tolist()[0] == 2.0
    (tmp_path / "old.safetensors").write_bytes(old)
    assert cr.load(tmp_path / "old.safetensors")["w"].tolist()[0] == 1.0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_every_dtype_comes_back_bit_for_bit(tmp_path: Path) -> None:
    """bfloat16 included: safetensors' own NumPy reader has no bfloat16, so a mixed-precision
    checkpoint could be saved but not loaded."""
    state = {"bf16": cr.randn(3, 4).to(cr.bfloat16), "f16": cr.randn(2).half(),
             "f64": cr.randn(2, dtype=cr.float64), "i8": cr.tensor([-3], dtype=cr.int8),
             "u8": cr.tensor([250], dtype=cr.uint8), "b": cr.tensor([True, False]),
             "empty": cr.zeros(0, 3).to(cr.bfloat16), "scalar": cr.tensor(1.5).to(cr.bfloat16)}
    cr.save(state, tmp_path / "mixed.safetensors")
    loaded = cr.load(tmp_path / "mixed.safetensors")
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
        assert loaded[key].numpy().tobytes() == value.numpy().tobytes()
