#!/usr/bin/python3
"""Writes the torch.save fixtures of lavascope's .pt reader.

Run with Debian's python3-torch (1.13) from this folder:
    cd testdata/pt && /usr/bin/python3 make_fixtures.py
The weights are those of ../hf-clip-tiny/checkpoint/model.safetensors, read
here with json + struct (the safetensors package is not needed).
"""
import collections
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "hf-clip-tiny", "checkpoint", "model.safetensors")


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    out = collections.OrderedDict()
    for name in sorted(header):
        if name == "__metadata__":
            continue
        e = header[name]
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def save(obj, name, **kw):
    torch.save(obj, os.path.join(HERE, name), **kw)


class RunsACommand:
    """Unpickling this with Python's pickle runs os.system."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/lavascope-pwned-pt",))


def main():
    sd = read_safetensors(SRC)

    # clip-tiny.pt: the state_dict as transformers 4.30 and earlier saved it
    # (position_ids buffers included), with three tensors sharing one
    # storage at different offsets (a fused q/k/v projection split into
    # views) and one stored transposed (a non-contiguous view). The values
    # are those of model.safetensors.
    plain = collections.OrderedDict(sd)
    p = "text_model.encoder.layers.0.self_attn."
    fused = torch.cat([sd[p + "q_proj.weight"], sd[p + "k_proj.weight"], sd[p + "v_proj.weight"]])
    rows = sd[p + "q_proj.weight"].shape[0]
    plain[p + "q_proj.weight"] = fused[0:rows]
    plain[p + "k_proj.weight"] = fused[rows : 2 * rows]
    plain[p + "v_proj.weight"] = fused[2 * rows :]
    w = "vision_model.encoder.layers.1.mlp.fc1.weight"
    plain[w] = sd[w].t().contiguous().t()
    assert not plain[w].is_contiguous()
    plain["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    plain["vision_model.embeddings.position_ids"] = torch.arange(50).unsqueeze(0)
    save(plain, "clip-tiny.pt")

    # clip-tiny-f16.pth: what a DataParallel training loop saves: float16
    # weights named module.*, under "state_dict" beside the epoch.
    half = collections.OrderedDict(("module." + k, v.half()) for k, v in sd.items())
    save({"epoch": 3, "state_dict": half, "best_acc": 0.8366}, "clip-tiny-f16.pth")

    # small.pt: the reader's unit cases: bfloat16 under "model", an
    # nn.Parameter, an int64 buffer, a scalar, two views of one storage,
    # module metadata.
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    # A module's state_dict: an OrderedDict with a _metadata attribute,
    # which the pickle sets with BUILD.
    small = torch.nn.Identity().state_dict()
    assert hasattr(small, "_metadata")
    small["bf16"] = base.to(torch.bfloat16)
    small["param"] = torch.nn.Parameter(torch.tensor([0.5, -1.25, 3.0]))
    small["ids"] = torch.arange(5)
    small["scalar"] = torch.tensor(2.6592)
    small["row1"] = base[1]
    small["col2"] = base[:, 2]
    # Protocol 4 (torch.save's pickle_protocol), for the opcodes protocol 2
    # does not use: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE.
    save({"model": small, "optimizer": {"lr": 1e-3, "betas": (0.9, 0.999)}}, "small.pt", pickle_protocol=4)

    # evil.pt: a pickle that calls os.system when Python unpickles it (never
    # load it with torch.load(weights_only=False)).
    save({"weight": torch.zeros(2), "payload": RunsACommand()}, "evil.pt")

    # legacy.pt: the pre-1.6 format, a bare pickle stream.
    save(collections.OrderedDict(x=torch.ones(2)), "legacy.pt", _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
