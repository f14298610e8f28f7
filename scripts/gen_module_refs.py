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


def ints_or_empty(t):
    return "{}" if t is None else ints(t)


def upstream(loss, reduction):
    return f32(*loss.shape) if reduction == "none" and loss.dim() > 0 else f32(1).reshape(())


def class_loss_row(name, op, reduction, xshape, weight=False, ignore_index=-100, smoothing=0.0, ignore_some=0):
    x = f32(*xshape, scale=2.0)
    c = xshape[0] if len(xshape) == 1 else xshape[1]
    tshape = () if len(xshape) == 1 else (xshape[0],) + tuple(xshape[2:])
    target = torch.randint(0, c, tshape)
    flat = target.view(-1)
    for k in range(ignore_some):  # the first few targets become ignore_index
        flat[k] = ignore_index
    wt = (f32(c).abs() + 0.25).to(torch.float32).double() if weight else None
    xi = leaf(x)
    if op == "cross_entropy":
        loss = F.cross_entropy(xi, target, weight=wt, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=smoothing)
    else:
        loss = F.nll_loss(xi, target, weight=wt, ignore_index=ignore_index, reduction=reduction)
    w = upstream(loss, reduction)
    loss.backward(w)
    return (f'{{"{name}", "{op}", {REDUCTIONS[reduction]}, {shape(x)}, {ignore_index}, {smoothing!r},\n'
            f' {lit(x)},\n {ints(target)}, {lit(wt)}, {lit(w)},\n {lit(loss)},\n {lit(xi.grad)},\n'
            f' "{loss.grad_fn.name()}"}},')


def pointwise_loss_row(name, op, reduction, xshape, beta=1.0, weight_shape=None, pos_weight_shape=None):
    x = f32(*xshape, scale=2.0)
    if op == "bce_with_logits":
        y = torch.rand(*xshape).to(torch.float32).double()
    else:
        y = f32(*xshape, scale=2.0)
    wt = (f32(*weight_shape).abs() + 0.25).to(torch.float32).double() if weight_shape else None
    pw = (f32(*pos_weight_shape).abs() + 0.25).to(torch.float32).double() if pos_weight_shape else None
    xi, yi = leaf(x), leaf(y)
    if op == "l1":
        loss = F.l1_loss(xi, yi, reduction=reduction)
    elif op == "smooth_l1":
        loss = F.smooth_l1_loss(xi, yi, reduction=reduction, beta=beta)
    else:
        loss = F.binary_cross_entropy_with_logits(xi, yi, weight=wt, reduction=reduction, pos_weight=pw)
    w = upstream(loss, reduction)
    loss.backward(w)
    ws = shape(wt) if wt is not None else "{}"
    ps = shape(pw) if pw is not None else "{}"
    return (f'{{"{name}", "{op}", {REDUCTIONS[reduction]}, {shape(x)}, {beta!r},\n {lit(x)},\n {lit(y)},\n'
            f' {ws}, {lit(wt)}, {ps}, {lit(pw)},\n {lit(w)},\n {lit(loss)},\n {lit(xi.grad)},\n {lit(yi.grad)},\n'
            f' "{loss.grad_fn.name()}"}},')


def layer_norm_row(name, xshape, normalized_shape, affine=True, eps=1e-5, bias_only=False):
    x = f32(*xshape, scale=1.5, offset=0.5)
    weight = f32(*normalized_shape, scale=0.5, offset=1.0) if affine and not bias_only else None
    bias = f32(*normalized_shape) if affine or bias_only else None
    xi, wi, bi = leaf(x), leaf(weight), leaf(bias)
    y = F.layer_norm(xi, normalized_shape, wi, bi, eps)
    w = f32(*xshape)
    y.backward(w)
    return (f'{{"{name}", {shape(x)}, {{{", ".join(str(s) for s in normalized_shape)}}}, {eps!r},\n'
            f' {lit(x)},\n {lit(weight)}, {lit(bias)},\n {lit(w)},\n {lit(y)},\n {lit(xi.grad)},\n'
            f' {lit(grad(wi))}, {lit(grad(bi))}}},')


def embedding_row(name, num, dim, index_shape, padding_idx=None):
    weight = f32(num, dim)
    index = torch.randint(0, num, index_shape)
    index.view(-1)[0] = index.view(-1)[-1]  # a repeated index: its gradients add
    if padding_idx is not None:
        index.view(-1)[1] = padding_idx % num
    wi = leaf(weight)
    y = F.embedding(index, wi, padding_idx=padding_idx)
    w = f32(*y.shape)
    y.backward(w)
    pad = "std::nullopt" if padding_idx is None else str(padding_idx)
    return (f'{{"{name}", {num}, {dim}, {pad}, {shape(index)}, {ints(index)},\n {lit(weight)},\n {lit(w)},\n'
            f' {lit(y)},\n {lit(wi.grad)}}},')


def embedding_init_row(seed, num, dim, padding_idx):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # the module's own dtype: its normal_ draws float32 numbers
    torch.manual_seed(seed)
    m = nn.Embedding(num, dim, padding_idx=padding_idx)
    torch.set_default_dtype(default)
    pad = "std::nullopt" if padding_idx is None else str(padding_idx)
    return f'{{{seed}, {num}, {dim}, {pad}, {lit(m.weight)}}},'


def unbatched_row(name, op, xshape, kernel, stride, padding, out_channels=0):
    """conv2d, avg_pool2d or max_pool2d on an unbatched [C, H, W] input."""
    x = f32(*xshape)
    weight = f32(out_channels, xshape[0], kernel, kernel, scale=0.5) if op == "conv2d" else None
    bias = f32(out_channels) if op == "conv2d" else None
    xi, wi, bi = leaf(x), leaf(weight), leaf(bias)
    if op == "conv2d":
        y = F.conv2d(xi, wi, bi, stride, padding)
    elif op == "avg_pool2d":
        y = F.avg_pool2d(xi, kernel, stride, padding)
    else:
        y = F.max_pool2d(xi, kernel, stride, padding)
    w = f32(*y.shape)
    y.backward(w)
    ws = shape(weight) if weight is not None else "{}"
    return (f'{{"{name}", "{op}", {shape(x)}, {ws}, {kernel}, {stride}, {padding}, {shape(y)},\n {lit(x)},\n'
            f' {lit(weight)}, {lit(bias)},\n {lit(w)},\n {lit(y)},\n {lit(xi.grad)},\n {lit(grad(wi))}, {lit(grad(bi))},\n'
            f' "{y.grad_fn.name()}"}},')


def channel_1d_row(name, op, xshape, p=0.0, training=True):
    """A 1d layer given a 2-D [C, L] input (and, to compare, a 3-D [N, C, L] one). Dropout1d takes
    [C, L] as one unbatched sample; BatchNorm1d(L) reads it as a batch [N, C], as PyTorch 1.13 does.
    A dropout whose mask is random (training, 0 < p < 1) keeps only its grad_fn name."""
    x = f32(*xshape)
    xi = leaf(x)
    if op == "dropout1d":
        y = F.dropout1d(xi, p, training)
    else:
        bn = nn.BatchNorm1d(xshape[-1])
        bn.train(training)
        y = bn(xi)
    w = f32(*y.shape)
    y.backward(w)
    random = op == "dropout1d" and training and 0.0 < p < 1.0
    values = "{}, {}" if random else f"{lit(y)},\n {lit(xi.grad)}"
    grad_fn = y.grad_fn.name() if y.grad_fn is not None else ""
    return (f'{{"{name}", "{op}", {p!r}, {str(training).lower()}, {shape(x)},\n {lit(x)},\n {lit(w)},\n'
            f' {values},\n "{grad_fn}"}},')


class ResBlock(nn.Module):
    """A one-line extra_repr next to two children (the C++ test's ResBlock)."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def extra_repr(self):
        return f"channels={self.channels}"


class Note(nn.Module):
    """A two-line extra_repr and no children."""

    def extra_repr(self):
        return "a=1\nb=2"


def non_strict_keys():
    """load_state_dict(strict=False) of the source model's state into the target model."""
    source = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    target = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Linear(2, 1))
    result = target.load_state_dict(source.state_dict(), strict=False)
    return [f'"{k}",' for k in result.missing_keys], [f'"{k}",' for k in result.unexpected_keys]


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
    "nn.L1Loss()",
    "nn.SmoothL1Loss(beta=0.5)",
    "nn.BCEWithLogitsLoss()",
    "nn.NLLLoss()",
    "nn.CrossEntropyLoss(label_smoothing=0.1)",
    "nn.LayerNorm([3, 4], eps=1e-3, elementwise_affine=False)",
    "nn.Embedding(5, 3, padding_idx=0)",
    "ResBlock(2)",
    "Note()",
    "nn.Sequential(ResBlock(2), Note())",
    "nn.ModuleList([nn.Linear(2, 3), nn.ReLU(), nn.ModuleList([nn.Tanh()]), nn.Sigmoid()])",
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

struct ClassLossRef {
  const char* name;
  const char* op;  // cross_entropy or nll_loss
  tg::Reduction reduction;
  tg::Shape shape;  // the input's; the target's drops the class dim
  std::int64_t ignore_index;
  double label_smoothing;
  Values input;
  std::vector<std::int64_t> target;
  Values weight, w, loss, dinput;
  const char* grad_fn;
};

struct PointwiseLossRef {
  const char* name;
  const char* op;  // l1, smooth_l1 (param beta), bce_with_logits
  tg::Reduction reduction;
  tg::Shape shape;
  double beta;
  Values input, target;
  tg::Shape weight_shape;
  Values weight;
  tg::Shape pos_weight_shape;
  Values pos_weight, w, loss, dinput, dtarget;
  const char* grad_fn;
};

struct LayerNormRef {
  const char* name;
  tg::Shape shape, normalized_shape;
  double eps;
  Values x, weight, bias, w, y, dx, dweight, dbias;
};

struct EmbeddingRef {
  const char* name;
  std::int64_t num, dim;
  std::optional<std::int64_t> padding_idx;
  tg::Shape index_shape;
  std::vector<std::int64_t> index;
  Values weight, w, y, dweight;
};

struct EmbeddingInitRef {  // torch.manual_seed(seed); nn.Embedding(num, dim, padding_idx).weight
  std::uint64_t seed;
  std::int64_t num, dim;
  std::optional<std::int64_t> padding_idx;
  Values weight;
};

struct UnbatchedRef {  // an unbatched [C, H, W] input
  const char* name;
  const char* op;  // conv2d, avg_pool2d, max_pool2d
  tg::Shape shape, weight_shape;
  std::int64_t kernel, stride, padding;
  tg::Shape y_shape;
  Values x, weight, bias, w, y, dx, dweight, dbias;
  const char* grad_fn;
};

struct Channel1dRef {  // a 1d layer given [C, L] (or [N, C, L] to compare)
  const char* name;
  const char* op;  // dropout1d (p, training) or batch_norm1d (BatchNorm1d(L), training)
  double p;
  bool training;
  tg::Shape shape;
  Values x, w, y, dx;  // y and dx empty: a random dropout mask, checked by its structure
  const char* grad_fn;  // "" for the input itself
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
    cls = [
        class_loss_row("cross_entropy mean [6, 5] weight", "cross_entropy", "mean", (6, 5), weight=True),
        class_loss_row("cross_entropy sum [6, 5] two ignored", "cross_entropy", "sum", (6, 5), ignore_some=2),
        class_loss_row("cross_entropy none [5, 4] ignore_index 2 (a class)", "cross_entropy", "none", (5, 4),
                       ignore_index=2, ignore_some=2),
        class_loss_row("cross_entropy mean [6, 5] label_smoothing 0.1", "cross_entropy", "mean", (6, 5),
                       smoothing=0.1),
        class_loss_row("cross_entropy mean [7, 4] weight, ignored, label_smoothing 0.2", "cross_entropy", "mean",
                       (7, 4), weight=True, ignore_some=2, smoothing=0.2),
        class_loss_row("cross_entropy none [5, 3] weight, label_smoothing 0.3", "cross_entropy", "none", (5, 3),
                       weight=True, smoothing=0.3),
        class_loss_row("cross_entropy sum [4, 3] label_smoothing 1", "cross_entropy", "sum", (4, 3), smoothing=1.0),
        class_loss_row("cross_entropy mean [5] unbatched", "cross_entropy", "mean", (5,)),
        class_loss_row("cross_entropy none [2, 4, 3] weight", "cross_entropy", "none", (2, 4, 3), weight=True),
        class_loss_row("cross_entropy mean [2, 4, 3] ignored", "cross_entropy", "mean", (2, 4, 3), ignore_some=1),
        class_loss_row("cross_entropy sum [2, 3, 2, 2] label_smoothing 0.1", "cross_entropy", "sum", (2, 3, 2, 2),
                       smoothing=0.1),
        class_loss_row("cross_entropy none [2, 3, 2, 2] weight", "cross_entropy", "none", (2, 3, 2, 2), weight=True),
        class_loss_row("nll_loss mean [6, 5]", "nll_loss", "mean", (6, 5)),
        class_loss_row("nll_loss none [5, 4] weight", "nll_loss", "none", (5, 4), weight=True),
        class_loss_row("nll_loss sum [6, 5] weight, two ignored", "nll_loss", "sum", (6, 5), weight=True,
                       ignore_some=2),
        class_loss_row("nll_loss mean [5, 3] weight, ignored", "nll_loss", "mean", (5, 3), weight=True,
                       ignore_some=1),
        class_loss_row("nll_loss mean [2, 3, 4]", "nll_loss", "mean", (2, 3, 4)),
        class_loss_row("nll_loss none [4] unbatched", "nll_loss", "none", (4,)),
    ]
    pointwise = [
        pointwise_loss_row("l1 mean [3, 4]", "l1", "mean", (3, 4)),
        pointwise_loss_row("l1 sum [3, 4]", "l1", "sum", (3, 4)),
        pointwise_loss_row("l1 none [2, 3, 2]", "l1", "none", (2, 3, 2)),
        pointwise_loss_row("smooth_l1 mean [3, 4] beta 1", "smooth_l1", "mean", (3, 4)),
        pointwise_loss_row("smooth_l1 none [3, 4] beta 0.5", "smooth_l1", "none", (3, 4), beta=0.5),
        pointwise_loss_row("smooth_l1 sum [3, 4] beta 3", "smooth_l1", "sum", (3, 4), beta=3.0),
        pointwise_loss_row("smooth_l1 mean [5] beta 0", "smooth_l1", "mean", (5,), beta=0.0),
        pointwise_loss_row("bce_with_logits mean [3, 4]", "bce_with_logits", "mean", (3, 4)),
        pointwise_loss_row("bce_with_logits none [3, 4] weight [3, 4]", "bce_with_logits", "none", (3, 4),
                           weight_shape=(3, 4)),
        pointwise_loss_row("bce_with_logits sum [3, 4] pos_weight [4]", "bce_with_logits", "sum", (3, 4),
                           pos_weight_shape=(4,)),
        pointwise_loss_row("bce_with_logits mean [2, 3, 4] weight [3, 1], pos_weight [4]", "bce_with_logits",
                           "mean", (2, 3, 4), weight_shape=(3, 1), pos_weight_shape=(4,)),
        pointwise_loss_row("bce_with_logits none [5] pos_weight [1]", "bce_with_logits", "none", (5,),
                           pos_weight_shape=(1,)),
    ]
    ln = [
        layer_norm_row("[4, 5] over [5]", (4, 5), (5,)),
        layer_norm_row("[2, 3, 4] over [3, 4] eps 1e-3", (2, 3, 4), (3, 4), eps=1e-3),
        layer_norm_row("[3, 6] no affine", (3, 6), (6,), affine=False),
        layer_norm_row("[2, 2, 3] bias only", (2, 2, 3), (3,), bias_only=True),
        layer_norm_row("[7] unbatched", (7,), (7,)),
    ]
    emb = [
        embedding_row("[6] indices into [5, 3]", 5, 3, (6,)),
        embedding_row("[2, 3] indices padding_idx 2", 6, 4, (2, 3), padding_idx=2),
        embedding_row("[4] indices padding_idx -1", 5, 2, (4,), padding_idx=-1),
    ]
    emb_init = [
        embedding_init_row(0, 5, 3, None),
        embedding_init_row(7, 4, 2, 1),
    ]
    unbatched = [
        unbatched_row("conv2d [2, 5, 5], 3 filters 3x3, padding 1", "conv2d", (2, 5, 5), 3, 1, 1, out_channels=3),
        unbatched_row("conv2d [1, 6, 6], 2 filters 2x2, stride 2", "conv2d", (1, 6, 6), 2, 2, 0, out_channels=2),
        unbatched_row("avg_pool2d [3, 4, 4] kernel 2", "avg_pool2d", (3, 4, 4), 2, 2, 0),
        unbatched_row("avg_pool2d [2, 5, 5] kernel 3 stride 2 padding 1", "avg_pool2d", (2, 5, 5), 3, 2, 1),
        unbatched_row("max_pool2d [3, 4, 4] kernel 2", "max_pool2d", (3, 4, 4), 2, 2, 0),
        unbatched_row("max_pool2d [2, 5, 5] kernel 3 stride 1 padding 1", "max_pool2d", (2, 5, 5), 3, 1, 1),
    ]
    reprs = [repr_row(e) for e in REPRS]
    missing, unexpected = non_strict_keys()
    channel_1d = [  # drawn last, so that the rows above keep their values
        channel_1d_row("dropout1d [4, 3] p 0.5", "dropout1d", (4, 3), p=0.5),
        channel_1d_row("dropout1d [4, 3] p 1", "dropout1d", (4, 3), p=1.0),
        channel_1d_row("dropout1d [4, 3] p 0", "dropout1d", (4, 3), p=0.0),
        channel_1d_row("dropout1d [4, 3] p 0.5 eval", "dropout1d", (4, 3), p=0.5, training=False),
        channel_1d_row("dropout1d [2, 4, 3] p 0.5", "dropout1d", (2, 4, 3), p=0.5),
        channel_1d_row("dropout1d [2, 4, 3] p 1", "dropout1d", (2, 4, 3), p=1.0),
        channel_1d_row("dropout1d [2, 4, 3] p 0.5 eval", "dropout1d", (2, 4, 3), p=0.5, training=False),
        channel_1d_row("BatchNorm1d(3) on [4, 3]: a batch of 4", "batch_norm1d", (4, 3)),
        channel_1d_row("BatchNorm1d(3) on [4, 3] eval", "batch_norm1d", (4, 3), training=False),
    ]
    write_inc(OUT, "gen_module_refs.py", "module_refs", STRUCTS.splitlines() + [""],
              [("ActivationRef", "kActivation", act), ("ClassLossRef", "kClassLoss", cls),
               ("PointwiseLossRef", "kPointwiseLoss", pointwise), ("LayerNormRef", "kLayerNorm", ln),
               ("EmbeddingRef", "kEmbedding", emb), ("EmbeddingInitRef", "kEmbeddingInit", emb_init),
               ("UnbatchedRef", "kUnbatched", unbatched),
               ("Channel1dRef", "kChannel1d", channel_1d), ("ReprRef", "kRepr", reprs),
               ("const char*", "kNonStrictMissing", missing),
               ("const char*", "kNonStrictUnexpected", unexpected)])

if __name__ == "__main__":
    main()
