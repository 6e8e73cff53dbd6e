"""Minimal safetensors writer and reader (numpy only, no `safetensors` package).

File layout (https://github.com/huggingface/safetensors):

    [8 bytes]  N, unsigned little-endian u64: length of the JSON header
    [N bytes]  JSON: {name: {"dtype": str, "shape": [int...], "data_offsets": [begin, end]},
                      "__metadata__": {str: str}}   (padded with spaces to a multiple of 8)
    [...]      raw little-endian tensor data; offsets are relative to the end of the header

This writer stores tensors sorted by name, back to back, without gaps or overlaps. The data
section starts at a multiple of 8 bytes from the file start; when all tensors share one dtype
(what the converter writes) every tensor is therefore aligned to its element size.

Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL. bfloat16 has no numpy
dtype: it is held as a `Bf16` wrapper around the raw uint16 bit patterns.
"""
import json
import struct

import numpy as np

_NP_TO_ST = {
    np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16",
    np.dtype("<i8"): "I64", np.dtype("<i4"): "I32", np.dtype("<i2"): "I16",
    np.dtype("i1"): "I8", np.dtype("u1"): "U8", np.dtype("bool"): "BOOL",
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}
_ST_TO_NP["BF16"] = np.dtype("<u2")


class Bf16:
    """A bfloat16 tensor held as its raw uint16 bit patterns (numpy has no bfloat16)."""

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise TypeError("Bf16 expects uint16 bit patterns, got %s" % bits.dtype)
        self.bits = bits

    @property
    def shape(self):
        return self.bits.shape

    def to_float32(self):
        """Exact widening to float32, same shape."""
        return (self.bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (as torch does).

    NaN stays NaN (quiet, sign kept); +-inf and overflow to inf follow IEEE rounding.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((u[nan] >> 16).astype(np.uint16)) | np.uint16(0x0040)
    return out


def _encode(name, value):
    """Return (dtype string, shape list, bytes) for one tensor."""
    if isinstance(value, Bf16):
        arr = np.ascontiguousarray(value.bits.astype("<u2", copy=False))
        return "BF16", list(arr.shape), arr.tobytes()
    arr = np.asarray(value)
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    st = _NP_TO_ST.get(np.dtype(dt))
    if st is None:
        raise TypeError("tensor %r: dtype %s is not supported by this writer" % (name, arr.dtype))
    arr = np.ascontiguousarray(arr.astype(dt.newbyteorder("<"), copy=False))
    return st, list(arr.shape), arr.tobytes()


def serialize(tensors, metadata=None):
    """Serialize {name: numpy array | Bf16} (+ optional {str: str} metadata) to bytes."""
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map str to str (key %r)" % (k,))
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot be a tensor name")
        st, shape, data = _encode(name, tensors[name])
        header[name] = {"dtype": st, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    """Write {name: array} to `path` in safetensors format (see module docstring)."""
    data = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)


def parse(data):
    """Parse safetensors bytes -> (tensors {name: np.ndarray | Bf16}, metadata dict).

    Validates that offsets are in range, contiguous, sorted and non-overlapping, and that each
    tensor's byte length matches its shape and dtype.
    """
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("safetensors header length %d exceeds file size %d" % (n, len(data)))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    spans = []
    for name, info in header.items():
        st = info["dtype"]
        if st not in _ST_TO_NP:
            raise ValueError("tensor %r: unsupported dtype %s" % (name, st))
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        npdt = _ST_TO_NP[st]
        expected = int(np.prod(shape, dtype=np.int64)) * npdt.itemsize
        if not (0 <= begin <= end <= len(body)) or end - begin != expected:
            raise ValueError("tensor %r: data_offsets %s do not hold %s %s (%d bytes)"
                             % (name, [begin, end], st, list(shape), expected))
        arr = np.frombuffer(body[begin:end], dtype=npdt).reshape(shape).copy()
        tensors[name] = Bf16(arr) if st == "BF16" else arr
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise ValueError("tensor %r: data starts at %d, expected %d (gap or overlap)"
                             % (name, begin, pos))
        pos = end
    return tensors, metadata


def load_file(path):
    """Read a safetensors file -> (tensors, metadata). See `parse`."""
    with open(path, "rb") as f:
        return parse(f.read())
