"""chainrule.save / chainrule.load: safetensors files, exact round trips, clear errors."""

from __future__ import annotations

import io
import json
import math
import os
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import chainrule
from chainrule import nn
from chainrule.optim import LBFGS, Adam


def _equal(a, b):
    """Same structure, types, dtypes, shapes and bits."""
    if isinstance(a, chainrule.Tensor):
        assert isinstance(b, chainrule.Tensor)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(force=True), b.numpy())
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _equal(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def _all_dtypes():
    rng = np.random.default_rng(0)
    return {
        "f64": chainrule.from_numpy(rng.normal(size=(3, 4))),
        "f32": chainrule.randn(5),
        "f16": chainrule.from_numpy(rng.normal(size=(2, 2)).astype(np.float16)),
        "i64": chainrule.arange(6).reshape(2, 3),
        "i32": chainrule.tensor([1, -2], dtype=chainrule.int32),
        "i16": chainrule.tensor([3], dtype=chainrule.int16),
        "i8": chainrule.tensor([-4], dtype=chainrule.int8),
        "u8": chainrule.tensor([255, 0], dtype=chainrule.uint8),
        "bool": chainrule.tensor([True, False, True]),
        "scalar": chainrule.tensor(2.5, dtype=chainrule.float64),
        "empty": chainrule.zeros(0, 3),
        "transposed": chainrule.from_numpy(np.arange(12.0).reshape(3, 4)).T,
        "weights.with.dots": chainrule.ones(2),
    }


def test_flat_state_dict_round_trip_is_exact_and_plain_safetensors(tmp_path):
    state = _all_dtypes()
    path = tmp_path / "model.safetensors"
    chainrule.save(state, path)
    _equal(state, chainrule.load(path))
    # other tools read the same file: one entry per name
    raw = load_file(path)
    assert set(raw) == set(state)
    np.testing.assert_array_equal(raw["transposed"], state["transposed"].numpy())


def test_requires_grad_tensors_save_their_values(tmp_path):
    w = chainrule.ones(3, requires_grad=True) * 2
    chainrule.save({"w": w}, tmp_path / "w.safetensors")
    loaded = chainrule.load(tmp_path / "w.safetensors")["w"]
    assert loaded.tolist() == [2.0, 2.0, 2.0] and not loaded.requires_grad


def test_loads_a_safetensors_file_written_by_another_tool(tmp_path):
    save_file({"a": np.arange(3, dtype=np.int64), "b": np.ones((2, 2), np.float32)},
              tmp_path / "x.safetensors", metadata={"format": "pt"})
    loaded = chainrule.load(tmp_path / "x.safetensors")
    assert loaded["a"].tolist() == [0, 1, 2] and loaded["b"].dtype == chainrule.float32
    loaded["b"].add_(1)  # loaded tensors are writable


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "epoch": 3, "best": float("inf"), "worst": float("-inf"), "nan": float("nan"),
        "lr": 0.1, "name": "run-1", "flag": True, "nothing": None,
        "ints": {0: chainrule.ones(2), 7: {"inner": (1, 2.5, "x")}}, "tuple_key": {(1, "a"): 2},
        "list": [chainrule.zeros(1), [None, 1e-300]], "np_scalar": np.float32(0.5),
    }
    chainrule.save(obj, tmp_path / "c.safetensors")
    loaded = chainrule.load(tmp_path / "c.safetensors")
    assert loaded.pop("np_scalar") == 0.5
    obj.pop("np_scalar")
    _equal(obj, loaded)


@pytest.mark.parametrize("make", [
    lambda ps: Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], amsgrad=True),
    lambda ps: LBFGS(ps, history_size=2, line_search_fn="strong_wolfe"),
])
def test_optimizer_state_dict_round_trip(make, tmp_path):
    params = [chainrule.randn(3, requires_grad=True), chainrule.randn(2, 2, requires_grad=True)]
    opt = make(params)

    def closure():
        opt.zero_grad()
        loss = sum(((p - 1) ** 4).sum() for p in params)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    state = opt.state_dict()
    chainrule.save(state, tmp_path / "opt.safetensors")
    _equal(state, chainrule.load(tmp_path / "opt.safetensors"))


def test_file_objects_round_trip():
    buffer = io.BytesIO()
    state = {"state": {0: {"step": chainrule.tensor(1.0)}}, "param_groups": [{"params": [0]}]}
    chainrule.save(state, buffer)
    buffer.seek(0)
    _equal(state, chainrule.load(buffer))


@pytest.mark.parametrize("obj, message", [
    ({"f": lambda: 0}, r"cannot store the function at key \['f'\]"),
    ({"a": {"b": np.ones(2)}}, r"ndarray at key \['a'\]\['b'\].*chainrule.from_numpy"),
    ({"s": {1, 2}}, "cannot store the set"),
    ({chainrule.ones(1): 1}, "dict key at the top level is a Tensor"),
])
def test_unsupported_values_raise_before_writing(obj, message, tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"previous")
    with pytest.raises(TypeError, match=message):
        chainrule.save(obj, path)
    assert path.read_bytes() == b"previous"


def test_crash_during_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    chainrule.save({"w": chainrule.ones(2)}, path)
    before = path.read_bytes()

    def crash(fh, arrays, metadata):
        fh.write(b"half a checkpo")
        raise OSError("disk full")

    monkeypatch.setattr(chainrule.serialization, "_write", crash)
    with pytest.raises(OSError, match="disk full"):
        chainrule.save({"w": chainrule.zeros(2)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind


def test_new_file_permissions_follow_the_umask(tmp_path):
    path = tmp_path / "p.safetensors"
    chainrule.save({"w": chainrule.ones(1)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    chainrule.save({"w": chainrule.zeros(1)}, path)  # replacing keeps the file's mode
    assert path.stat().st_mode & 0o777 == 0o640


def _checkpoint(tmp_path):
    path = tmp_path / "good.safetensors"
    chainrule.save({"w": chainrule.ones(64, 4), "b": chainrule.zeros(4)}, path)
    return path


@pytest.mark.parametrize("cut, message", [
    (0, "has 0 bytes"), (5, "has 5 bytes"), (20, "truncated"), (-1, "truncated"),
])
def test_truncated_file_is_named(cut, message, tmp_path):
    data = _checkpoint(tmp_path).read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:-100])
    with pytest.raises(RuntimeError, match=rf"cut\.safetensors.*{message}"):
        chainrule.load(bad)


@pytest.mark.parametrize("content", [
    b"just some text, definitely not a checkpoint\n", b"PK\x03\x04" + bytes(200), bytes(64),
])
def test_not_a_safetensors_file(content, tmp_path):
    bad = tmp_path / "other.bin"
    bad.write_bytes(content)
    with pytest.raises(RuntimeError, match=r"other\.bin.*not a safetensors checkpoint"):
        chainrule.load(bad)


def test_a_torch_pickle_checkpoint_is_refused_clearly(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "model.pt")
    with pytest.raises(RuntimeError, match=r"model\.pt.*not a safetensors checkpoint"):
        chainrule.load(tmp_path / "model.pt")


def _with_header(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


@pytest.mark.parametrize("content, message", [
    (_with_header(b"{this is not json}"), "corrupt.*header is not valid"),
    (_with_header(b'{"w": {"dtype": "F32", "shape": [2]}}', bytes(8)), "corrupt.*header"),
    (_with_header(b'{"w": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}', bytes(8)),
     "corrupt"),
    (_with_header(b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}', bytes(8)),
     "corrupt"),
    (_with_header(json.dumps({"__metadata__": {"chainrule.format": "1", "chainrule.tree":
                                                '{"tensor": "missing"}'}}).encode()),
     "corrupt.*structure metadata"),
    (_with_header(json.dumps({"__metadata__": {"chainrule.format": "9", "chainrule.tree":
                                                "null"}}).encode()), "format '9'"),
])
def test_corrupt_header_is_named(content, message, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(RuntimeError, match=rf"bad\.safetensors.*{message}"):
        chainrule.load(bad)
    with pytest.raises(RuntimeError, match=message):
        chainrule.load(io.BytesIO(content))


def test_saving_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="the directory .*nowhere.* does not exist"):
        chainrule.save({"w": chainrule.ones(1)}, tmp_path / "nowhere" / "w.safetensors")


def test_map_location_other_than_cpu_is_refused(tmp_path):
    path = _checkpoint(tmp_path)
    assert chainrule.load(path, map_location="cpu")["b"].shape == (4,)
    with pytest.raises(RuntimeError, match="map_location='cuda'"):
        chainrule.load(path, map_location="cuda")


# ----------------------------------------------------------------- with a Module
def _model(hidden=8):
    chainrule.manual_seed(0)
    return nn.Sequential(nn.Linear(4, hidden), nn.Linear(hidden, 2))


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_module_state_dict_round_trip(tmp_path):
    model = _model()
    chainrule.save(model.state_dict(), tmp_path / "m.safetensors")
    fresh = _model()
    for p in fresh.parameters():
        p.data.mul_(0)
    fresh.load_state_dict(chainrule.load(tmp_path / "m.safetensors"))
    _equal(_snapshot(model), _snapshot(fresh))


def test_broken_files_leave_the_model_unchanged(tmp_path):
    model = _model()
    before = _snapshot(model)
    good = tmp_path / "good.safetensors"
    chainrule.save(model.state_dict(), good)
    (tmp_path / "cut.safetensors").write_bytes(good.read_bytes()[:-8])
    (tmp_path / "text.safetensors").write_text("not a checkpoint at all")
    for name in ["cut.safetensors", "text.safetensors"]:
        with pytest.raises(RuntimeError, match=name.replace(".", r"\.")):
            model.load_state_dict(chainrule.load(tmp_path / name))
        _equal(before, _snapshot(model))


def test_another_models_names_are_refused_and_nothing_is_written(tmp_path):
    model = _model()
    before = _snapshot(model)
    chainrule.save({"encoder.weight": chainrule.ones(8, 4)}, tmp_path / "other.safetensors")
    with pytest.raises(RuntimeError, match="(?s)Missing key.*Unexpected key"):
        model.load_state_dict(chainrule.load(tmp_path / "other.safetensors"))
    _equal(before, _snapshot(model))


def test_another_models_shapes_are_refused_and_nothing_is_written(tmp_path):
    model = _model(hidden=8)
    before = _snapshot(model)
    chainrule.save(_model(hidden=16).state_dict(), tmp_path / "wider.safetensors")
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_state_dict(chainrule.load(tmp_path / "wider.safetensors"))
    _equal(before, _snapshot(model))  # '1.bias' (shape (2,) in both) must not be overwritten
