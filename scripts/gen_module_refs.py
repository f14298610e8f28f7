#!/usr/bin/python3
# Writes tests/layers/module_refs.inc: PyTorch 1.13's activations (leaky_relu, gelu exact and
# tanh, silu, softmax and log_softmax modules), losses (l1, smooth_l1, bce_with_logits, nll,
# cross_entropy with weight, ignore_index and label smoothing), layer_norm and embedding on small
# fixed inputs, with the gradients of sum(w ⊙ out), and the printed form of the modules.
# Layer: tests (fixtures). Inputs are float32 values written exactly; references are computed in
# float64. Run with Debian's python3-torch: /usr/bin/python3 scripts/gen_module_refs.py
import pathlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from gen_layer_refs_bn_loss import REDUCTIONS, f32, grad, leaf, lit, shape, write_inc

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "layers" / "module_refs.inc"


def ints(t):
    return "{" + ", ".join(str(int(v)) for v in t.reshape(-1).tolist()) + "}"


def activation_row(name, op, xshape, param=0.0):
    x = f32(*xshape, scale=2.0)
    x.view(-1)[0] = 0.0  # every activation's kink or centre, where the backward picks a side
    w = f32(*xshape)
    xi = leaf(x)
    fns = {
        "leaky_relu": lambda t: F.leaky_relu(t, param),
        "gelu": lambda t: F.gelu(t),
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "silu": F.silu,
        "softmax": lambda t: nn.Softmax(int(param))(t),
        "log_softmax": lambda t: nn.LogSoftmax(int(param))(t),
    }
    y = fns[op](xi)
    y.backward(w)
    return (f'{{"{name}", "{op}", {param!r}, {shape(x)},\n {lit(x)},\n {lit(w)},\n {lit(y)},\n'
            f' {lit(xi.grad)}}},')


# The printed form of each module, from the very expression the C++ test builds its module with
# (the test maps each string to a constructor call).
REPRS = [
    "nn.LeakyReLU()",
    "nn.LeakyReLU(0.2)",
    "nn.GELU()",
    "nn.GELU(approximate='tanh')",
    "nn.SiLU()",
    "nn.Softmax(dim=1)",
    "nn.LogSoftmax(dim=-1)",
    "nn.Identity()",
    "nn.Dropout1d(0.2)",
    "nn.Dropout2d()",
]


def repr_row(expr):
    text = repr(eval(expr)).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{"{expr}", "{text}"}},'


STRUCTS = """\
struct ActivationRef {
  const char* name;
  const char* op;  // leaky_relu (param: slope), gelu, gelu_tanh, silu, softmax, log_softmax (param: dim)
  double param;
  tg::Shape shape;
  Values x, w, y, dx;
};

struct ReprRef {
  const char* expr;  // the Python expression that built the module
  const char* text;  // its repr()
};
"""


def main():
    torch.manual_seed(4321)
    torch.set_default_dtype(torch.float64)
    act = [
        activation_row("leaky_relu [3, 4] slope 0.01", "leaky_relu", (3, 4), 0.01),
        activation_row("leaky_relu [2, 3, 2] slope 0.2", "leaky_relu", (2, 3, 2), 0.2),
        activation_row("leaky_relu [5] slope -0.5", "leaky_relu", (5,), -0.5),
        activation_row("gelu [3, 5]", "gelu", (3, 5)),
        activation_row("gelu tanh [3, 5]", "gelu_tanh", (3, 5)),
        activation_row("silu [4, 3]", "silu", (4, 3)),
        activation_row("Softmax(dim=1) [3, 4]", "softmax", (3, 4), 1.0),
        activation_row("LogSoftmax(dim=-1) [2, 3, 4]", "log_softmax", (2, 3, 4), -1.0),
    ]
    reprs = [repr_row(e) for e in REPRS]
    write_inc(OUT, "gen_module_refs.py", "module_refs", STRUCTS.splitlines() + [""],
              [("ActivationRef", "kActivation", act), ("ReprRef", "kRepr", reprs)])

if __name__ == "__main__":
    main()
