#!/usr/bin/python3
"""Read and write safetensors files with numpy alone, and with torch when it is installed.

Debian ships no Python package for safetensors; this file is a small stand-in for its
numpy/torch API, enough to open tapegrad's checkpoints (tg::save) in PyTorch and to write files
tapegrad reads (tg::load, tg::load_tensors). The format: an 8-byte little-endian header length,
a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian bytes.

    import safetensors_io as st
    state = st.load_torch("net.safetensors")        # {name: torch.Tensor}
    model.load_state_dict(state)
    st.save_torch(model.state_dict(), "net.safetensors", {"epoch": "3"})
    arrays = st.load("net.safetensors")             # {name: numpy.ndarray}; BF16 comes as float32

Command line: safetensors_io.py FILE lists the tensors (name, dtype, shape) and the metadata.
Layer: scripts (tools); uses only the standard library, numpy and, for *_torch, torch.
"""
import json
import struct
import sys

import numpy as np

# safetensors dtype -> numpy dtype (BF16 has none: its bits are read as uint16, see _bf16_to_f32).
_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY.items() if k != "BF16"}


def _read(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, not even a header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header of {n} bytes in a file of {len(data)} bytes")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n:]
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return entries, metadata, body


def _raw(path):
    """{name: (safetensors dtype, numpy array of the stored element type)}, in data order."""
    entries, _, body = _read(path)
    out = {}
    for name, e in entries:
        if e["dtype"] not in _NUMPY:
            raise ValueError(f"{path}: unsupported dtype {e['dtype']} for {name!r}")
        begin, end = e["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=np.dtype(_NUMPY[e["dtype"]]).newbyteorder("<"))
        out[name] = (e["dtype"], array.reshape(e["shape"]).copy())
    return out


def _bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def metadata(path):
    """The file's __metadata__ (str -> str)."""
    return _read(path)[1]


def load(path):
    """{name: numpy.ndarray} in the file's data order; BF16 entries are converted to float32."""
    return {k: _bf16_to_f32(a) if d == "BF16" else a for k, (d, a) in _raw(path).items()}


def _write(path, items, metadata):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, (dtype, data) in items:
        header[name] = {"dtype": dtype, "shape": list(data.shape), "data_offsets": [offset, offset + data.nbytes]}
        chunks.append(data.tobytes())
        offset += data.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def save(arrays, path, metadata=None):
    """Writes {name: numpy.ndarray} (float64/32/16, int64/32/16/8, uint8, bool) in dict order."""
    items = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in _FROM_NUMPY:
            raise ValueError(f"{name!r}: unsupported numpy dtype {a.dtype}")
        items.append((name, (_FROM_NUMPY[a.dtype], a.astype(a.dtype.newbyteorder("<"), copy=False))))
    _write(path, items, metadata)


def load_torch(path):
    """{name: torch.Tensor} with the stored dtypes (BF16 as torch.bfloat16)."""
    import torch
    out = {}
    for name, (dtype, a) in _raw(path).items():
        t = torch.from_numpy(a.astype(np.int16) if dtype == "BF16" else a)
        out[name] = t.view(torch.bfloat16) if dtype == "BF16" else t
    return out


def save_torch(tensors, path, metadata=None):
    """Writes {name: torch.Tensor} (a state_dict), bfloat16 included, in dict order."""
    import torch
    items = []
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            items.append((name, ("BF16", t.view(torch.int16).numpy().view(np.uint16))))
        else:
            a = t.numpy()
            if a.dtype not in _FROM_NUMPY:
                raise ValueError(f"{name!r}: unsupported torch dtype {t.dtype}")
            items.append((name, (_FROM_NUMPY[a.dtype], a)))
    _write(path, items, metadata)


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} FILE.safetensors", file=sys.stderr)
        return 2
    for name, (dtype, a) in _raw(argv[1]).items():
        print(f"{name}\t{dtype}\t{list(a.shape)}")
    for k, v in metadata(argv[1]).items():
        print(f"__metadata__ {k}\t{v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
