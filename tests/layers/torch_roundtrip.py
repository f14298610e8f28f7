#!/usr/bin/python3
# Run by tests/layers/test_serialize_torch.cpp with PyTorch 1.13: opens tapegrad's checkpoint IN
# with scripts/safetensors_io.py, loads it strictly into the same model built in PyTorch, and
# writes back, with safetensors_io.py again,
#   STATE: the model's state_dict after one SGD step (lr 0.1) on sum(model(x)²) in training mode;
#   EXTRA: "eval_output" (the loaded model in eval mode on x), and the first weight as float16
#          ("weight_f16") and bfloat16 ("weight_bf16"),
# with x = arange(8).reshape(2, 4) / 7. Layer: tests.
import pathlib
import sys

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import safetensors_io as st  # noqa: E402


def main(src, state_path, extra_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    model.load_state_dict(st.load_torch(src), strict=True)
    x = torch.arange(8.0).reshape(2, 4) / 7
    model.eval()
    with torch.no_grad():
        eval_output = model(x)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    (model(x) ** 2).sum().backward()
    opt.step()
    st.save_torch(model.state_dict(), state_path, {"torch": torch.__version__})
    weight = model[0].weight.detach()
    st.save_torch({"eval_output": eval_output, "weight_f16": weight.half(), "weight_bf16": weight.bfloat16()},
                  extra_path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
