"""``chainrule.save`` / ``chainrule.load``: state dicts and checkpoints as safetensors files.

No pickle: loading an untrusted file runs no code. Tensors are the file's safetensors
entries; the structure around them (nested dicts with int keys, lists, tuples, numbers,
strings, None: an optimizer's or scheduler's state dict) is JSON in the header's
metadata, so a flat ``{name: tensor}`` state dict is also a plain safetensors file that
other tools read. Writes go to a temporary file in the same directory, then replace the
target in one step, so a crash never leaves half a checkpoint. A CRC-32 of the structure
and of every tensor (name, dtype, shape, bytes) is kept in the metadata and checked on
load, so a file damaged on disk or in transfer is refused instead of loaded wrong.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import secrets
import struct
import zlib
from typing import IO, Any

import numpy as np

from . import _backend, _dtype
from .tensor import Tensor, _wrap

_FORMAT_KEY = "chainrule.format"
_TREE_KEY = "chainrule.tree"
_CHECK_KEY = "chainrule.crc32"
_FORMAT = "1"
_HEADER_LIMIT = 100_000_000  # safetensors' own cap on the header size

PathOrFile = str | os.PathLike | IO[bytes]


def save(obj: Any, f: PathOrFile) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists/tuples of tensors, numbers,
    strings and None) to ``f``, a path or a binary file object.

    >>> chainrule.save(model.state_dict(), "model.safetensors")
    >>> chainrule.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3},
    ...                "checkpoint.safetensors")
    """
    encoder = _Encoder()
    tree = json.dumps(encoder.encode(obj, ()), allow_nan=False)
    metadata = {_FORMAT_KEY: _FORMAT, _TREE_KEY: tree,
                _CHECK_KEY: _checksum(tree, encoder.arrays)}
    if hasattr(f, "write"):
        _write(f, encoder.arrays, metadata)
        return
    _atomic_save_file(encoder.arrays, os.fspath(f), metadata)


def load(f: PathOrFile, map_location: Any = None, *, weights_only: bool = True) -> Any:
    """Read what ``save`` wrote (or any safetensors file, as ``{name: tensor}``).

    A truncated file, a file that is not safetensors, or a corrupt header raises
    RuntimeError naming the file. Tensors load into host memory, or onto the device
    ``map_location`` names (``"cuda"``, ``chainrule.device(...)``); ``weights_only`` is
    accepted for PyTorch compatibility (nothing but data is loaded).

    >>> model.load_state_dict(chainrule.load("model.safetensors"))
    """
    target = None
    if map_location is not None:
        target = _backend.resolve(map_location)
        try:
            _backend.check_available(target)
        except RuntimeError as error:
            raise RuntimeError(f"chainrule.load: map_location={map_location!r}: {error} (use "
                               f"map_location='cpu' or None)") from None
    if hasattr(f, "read"):
        name = repr(getattr(f, "name", f))
        data = f.read()
        header = _check_framing(name, data[:8], lambda n: data[8:8 + n], len(data))
        arrays = _read_arrays(name, data, header, 8 + struct.unpack("<Q", data[:8])[0])
    else:
        path = os.fspath(f)
        name = repr(path)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            prefix = fh.read(8)
            header = _check_framing(name, prefix, fh.read, size)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                arrays = _read_arrays(name, data, header, 8 + struct.unpack("<Q", prefix)[0])
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(name, "its header's metadata is not a map of strings")
    tensors = {key: _wrap(a if target is None else _backend.to_device(a, target))
               for key, a in arrays.items()}
    if not any(key in metadata for key in (_FORMAT_KEY, _TREE_KEY, _CHECK_KEY)):
        return tensors  # a plain safetensors file: its entries in order
    # a chainrule checkpoint: all of its keys must be there (one missing is damage, not
    # another kind of file, which would load silently as a flat dict)
    if _FORMAT_KEY not in metadata or _TREE_KEY not in metadata:
        raise _corrupt(name, "its chainrule metadata is incomplete (a damaged header)")
    if metadata[_FORMAT_KEY] != _FORMAT:
        raise RuntimeError(
            f"chainrule.load: {name} was written in chainrule checkpoint format "
            f"{metadata[_FORMAT_KEY]!r}, this version reads format {_FORMAT!r}"
        )
    expected = metadata.get(_CHECK_KEY)
    if expected is not None and expected != _checksum(metadata[_TREE_KEY], arrays):
        raise _corrupt(name, "its contents do not match the checksum written with them (the "
                             "file was damaged after it was saved)")
    try:
        tree = json.loads(metadata[_TREE_KEY])
        return _decode(tree, tensors)
    except (ValueError, KeyError, TypeError) as error:
        raise _corrupt(name, f"its structure metadata is damaged ({error})") from None


def _checksum(tree: str, arrays: dict[str, np.ndarray]) -> str:
    """CRC-32 of the structure and of each tensor's name, dtype, shape and bytes."""
    crc = zlib.crc32(tree.encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        crc = zlib.crc32(f"{key}|{array.dtype.str}|{array.shape}".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(np.uint8), crc)
    return f"{crc:08x}"


# --------------------------------------------------------------------- encoding
class _Encoder:
    """Turns an object into JSON-able structure, collecting its tensors as named arrays.

    JSON objects are always tags: {"tensor": entry name}, {"dict": [[key, value], ...]}
    (keys keep their types: ints for an optimizer's parameter indices), {"tuple": [...]},
    {"float": "inf" | "-inf" | "nan"}. Lists, strings, finite numbers, booleans and None
    are themselves.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, path: tuple) -> Any:
        if isinstance(value, Tensor):
            return {"tensor": self._add(value, path)}
        if isinstance(value, dict):
            return {"dict": [[self._key(k, path), self.encode(v, (*path, k))]
                             for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"tuple": [self.encode(v, (*path, i)) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return self.encode(value.item(), path)
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if value is None or isinstance(value, (bool, int, str)):
            return value
        hint = " (wrap it with chainrule.from_numpy)" if isinstance(value, np.ndarray) else ""
        raise TypeError(
            f"chainrule.save: cannot store the {type(value).__name__} at {_where(path)}{hint}; "
            f"a checkpoint holds tensors, numbers, strings, None, and dicts, lists and tuples "
            f"of them (no pickled objects)"
        )

    def _key(self, key: Any, path: tuple) -> Any:
        if isinstance(key, (Tensor, dict, list)):
            raise TypeError(
                f"chainrule.save: a dict key at {_where(path)} is a {type(key).__name__}; keys "
                f"must be strings, numbers, None or tuples of them"
            )
        return self.encode(key, path)

    def _add(self, tensor: Tensor, path: tuple) -> str:
        name = ".".join(map(str, path)) or "tensor"
        unique, n = name, 1
        while unique in self.arrays:
            n += 1
            unique = f"{name}#{n}"
        array = _backend.to_numpy(tensor._data)  # files hold host arrays, whatever the device
        self.arrays[unique] = array if array.flags.c_contiguous else array.copy(order="C")
        return unique


def _where(path: tuple) -> str:
    return "the top level" if not path else "key " + "".join(f"[{p!r}]" for p in path)


def _decode(node: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    (tag, body), = node.items()
    if tag == "tensor":
        return tensors[body]
    if tag == "dict":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in body}
    if tag == "tuple":
        return tuple(_decode(v, tensors) for v in body)
    if tag == "float":
        return float(body)
    raise ValueError(f"unknown tag {tag!r}")


# ------------------------------------------------------------------- the file
# safetensors' dtype names. The file is written here rather than by safetensors' save_file,
# which writes a temporary file of its own (named .tmpXXXXXX, left behind by a crash) and
# holds no fsync: here the one temporary file is ours, streamed, synced, then renamed.
_DTYPE_CODES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
                "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64",
                "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL"}


def _write(f: IO[bytes], arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a safetensors file: the 8-byte header length, the JSON header (padded with
    spaces to a multiple of 8), then each array's bytes, little-endian, in header order."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for key, array in arrays.items():
        header[key] = {"dtype": _DTYPE_CODES[array.dtype.name], "shape": list(array.shape),
                       "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for array in arrays.values():
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        f.write(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)


def _atomic_save_file(arrays: dict[str, np.ndarray], path: str, metadata: dict[str, str]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"chainrule.save: cannot write {path!r}: the directory {directory!r} does not exist"
        )
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # created with 0o666 so the umask applies as for any new file; an existing checkpoint
    # keeps its mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, arrays, metadata)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the rename makes it the file
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_framing(name: str, prefix: bytes, read: Any, size: int) -> dict[str, Any]:
    """Check the 8-byte header length, the JSON header and that the tensor data the header
    describes is all there; returns the parsed header."""
    if len(prefix) < 8:
        raise RuntimeError(
            f"chainrule.load: {name} is not a safetensors checkpoint: it has {size} bytes, fewer "
            f"than the 8-byte header length (an empty or truncated file?)"
        )
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > _HEADER_LIMIT or 8 + header_len > size:
        first = read(1) if size > 8 else b""
        if first != b"{" or header_len > _HEADER_LIMIT:
            raise RuntimeError(
                f"chainrule.load: {name} is not a safetensors checkpoint (its first bytes are "
                f"{prefix!r}, not a header length followed by a JSON header)"
            )
        raise RuntimeError(
            f"chainrule.load: {name} is truncated: its header should be {header_len} bytes but "
            f"the file has only {size - 8} bytes after the length field"
        )
    raw = read(header_len)
    if not raw.startswith(b"{"):
        raise RuntimeError(
            f"chainrule.load: {name} is not a safetensors checkpoint (no JSON header after the "
            f"8-byte length)"
        )
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        data_len = max((entry["data_offsets"][1] for key, entry in header.items()
                        if key != "__metadata__"), default=0)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError) as error:
        raise _corrupt(name, f"its header is not valid ({error})") from None
    expected = 8 + header_len + data_len
    if size < expected:
        raise RuntimeError(
            f"chainrule.load: {name} is truncated: the header describes {expected} bytes but the "
            f"file has {size}"
        )
    return header


_NUMPY_DTYPES = {code: _dtype.bfloat16.np if name == "bfloat16" else np.dtype(name)
                 for name, code in _DTYPE_CODES.items()}


def _read_arrays(name: str, data: Any, header: dict[str, Any], start: int) -> dict:
    """The tensors the header describes, read from ``data`` (the file's bytes; its data
    section begins at ``start``), in offset order, each a copy of its own (safetensors'
    NumPy reader has no bfloat16). Every entry must have a known dtype, a shape of
    non-negative ints, and bytes that follow the previous entry's and fit it exactly, up to
    the file's end: anything else is damage and raises, before any array is made."""
    entries = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            code, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise _corrupt(name, f"the header entry of {key!r} is not a tensor's") from None
        dtype = _NUMPY_DTYPES.get(code) if isinstance(code, str) else None
        if dtype is None:
            raise _corrupt(name, f"tensor {key!r} has an unknown dtype {code!r}")
        if (not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape)
                or type(begin) is not int or type(end) is not int):
            raise _corrupt(name, f"tensor {key!r} has an invalid shape or offsets")
        entries.append((begin, end, key, dtype, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    position = 0
    for begin, end, key, dtype, shape in entries:
        if begin != position or end - begin != math.prod(shape) * dtype.itemsize:
            raise _corrupt(name, f"tensor {key!r} of shape {shape} and dtype {dtype} does not "
                                 f"fit its bytes [{begin}, {end}) after byte {position}")
        position = end
    if start + position != len(data):
        raise _corrupt(name, f"{len(data) - start - position} bytes follow the last tensor")
    return {key: np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=start + begin)
            .reshape(shape).copy() for begin, _, key, dtype, shape in entries}


def _corrupt(name: str, detail: str) -> RuntimeError:
    return RuntimeError(f"chainrule.load: {name} is a corrupt safetensors checkpoint: {detail}")
