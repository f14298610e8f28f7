// sync_batch_norm: batch_norm's kernels (layers/batchnorm.h, in pieces) with an all-reduce
// between the pieces, one tape entry (SyncBatchNormBackward), and the SyncBatchNorm module.
// Layer: distributed.
#include "tapegrad/distributed/sync_batchnorm.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/distributed/collectives.h"
#include "tapegrad/distributed/mpi_comm.h"

namespace tg {

namespace {

// --- the forward's reduction: per channel a triple (count, Σ x, m2 = Σ (x − mean)²) ---------------
// Chan, Golub & LeVeque's pairwise merge of two sets a and b:
//   n = na + nb,  Σ = Σa + Σb,  m2 = m2a + m2b + (Σb/nb − Σa/na)² · na·nb/n
// Each set's m2 is centred on its own mean, so nothing cancels (E[x²] − E[x]² would lose the
// variance's digits when |mean| ≫ std). The merge gives the same bits either way round, which MPI
// needs from an op declared commutative.
constexpr int kMoments = 3;

void merge_moments(void* in, void* inout, int* len, MPI_Datatype*) {
  const double* a = static_cast<const double*>(in);
  double* b = static_cast<double*>(inout);
  for (int c = 0; c < *len; ++c, a += kMoments, b += kMoments) {
    const double na = a[0], nb = b[0];
    if (na == 0) continue;
    if (nb == 0) {
      b[0] = a[0], b[1] = a[1], b[2] = a[2];
      continue;
    }
    const double n = na + nb, delta = b[1] / nb - a[1] / na;
    b[2] = a[2] + b[2] + delta * delta * (na * nb / n);
    b[1] = a[1] + b[1];
    b[0] = n;
  }
}

struct MomentsReduction {
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPI_Op op = MPI_OP_NULL;
};

// Made on first use (MPI is running by then) and kept until MPI_Finalize frees everything.
const MomentsReduction& moments_reduction() {
  static const MomentsReduction r = [] {
    MomentsReduction m;
    MPI_Type_contiguous(kMoments, MPI_DOUBLE, &m.type);
    MPI_Type_commit(&m.type);
    MPI_Op_create(merge_moments, /*commute=*/1, &m.op);
    return m;
  }();
  return r;
}

void check_sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias) {
  TG_CHECK(x.dim() >= 2, "[sync_batch_norm] expected input of shape [N, C, *] (at least 2 dims), got {}", x.sizes());
  TG_CHECK(is_floating(x.dtype()), "[sync_batch_norm] expected a floating point input, got {}", dtype_name(x.dtype()));
  const std::int64_t C = x.size(1);
  const std::pair<const char*, const Tensor*> params[] = {
      {"running_mean", &running_mean}, {"running_var", &running_var}, {"weight", &weight}, {"bias", &bias}};
  for (const auto& [name, t] : params) {
    if (!t->defined()) continue;
    TG_CHECK(t->sizes() == Shape{C} && t->dtype() == x.dtype(),
             "[sync_batch_norm] expected {} of shape [{}] and dtype {} (the input's, {}), got shape {} and dtype {}",
             name, C, dtype_name(x.dtype()), x.sizes(), t->sizes(), dtype_name(t->dtype()));
  }
  TG_CHECK(running_mean.defined() == running_var.defined(),
           "[sync_batch_norm] expected running_mean and running_var both defined or both undefined, got only {}",
           running_mean.defined() ? "running_mean" : "running_var");
  TG_CHECK(dist::is_initialized(),
           "[sync_batch_norm] expected tg::dist::init() to have been called (the statistics are summed across ranks), "
           "got no process group");
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps) {
  check_sync_batch_norm(x, running_mean, running_var, weight, bias);
  const std::int64_t C = x.size(1);
  const DType dtype = x.dtype();

  // The ranks agree on C, the dtype and the values per sample before any rank sends channel sums.
  const std::vector<std::int64_t> layout{C, numel_of(Shape(x.sizes().begin() + 1, x.sizes().end())),
                                         static_cast<std::int64_t>(dtype)};
  const std::vector<std::int64_t> layouts = dist::detail::all_gather_raw("sync_batch_norm", layout);
  for (std::size_t r = 1; r * layout.size() < layouts.size(); ++r) {
    auto text = [&](std::size_t k) {
      return fmt::format("C = {}, {} values per sample, {}", layouts[3 * k], layouts[3 * k + 1],
                         dtype_name(static_cast<DType>(layouts[3 * k + 2])));
    };
    TG_CHECK(std::equal(layouts.begin(), layouts.begin() + 3, layouts.begin() + 3 * static_cast<std::ptrdiff_t>(r)),
             "[sync_batch_norm] expected every rank's input to match rank 0's ({}), got rank {}'s with {}", text(0), r,
             text(r));
  }

  BatchNormMoments local = batch_norm_moments(x);
  std::vector<double> moments(static_cast<std::size_t>(C * kMoments));
  const double* sum = local.sum.data_ptr<double>();
  const double* m2 = local.m2.data_ptr<double>();
  for (std::int64_t c = 0; c < C; ++c) {
    moments[static_cast<std::size_t>(c * kMoments)] = static_cast<double>(local.count);
    moments[static_cast<std::size_t>(c * kMoments + 1)] = sum[c];
    moments[static_cast<std::size_t>(c * kMoments + 2)] = m2[c];
  }
  dist::detail::all_reduce_raw("sync_batch_norm", moments.data(), C, moments_reduction().type, moments_reduction().op);
  const std::int64_t count = static_cast<std::int64_t>(moments[0]);
  TG_CHECK(count > 1, "[sync_batch_norm] Expected more than 1 value per channel when training, got input size {} "
           "on this rank and {} values per channel on all {} ranks", x.sizes(), count, dist::world_size());

  std::vector<double> mean_values(static_cast<std::size_t>(C)), var_values(static_cast<std::size_t>(C));
  for (std::int64_t c = 0; c < C; ++c) {
    mean_values[static_cast<std::size_t>(c)] = moments[static_cast<std::size_t>(c * kMoments + 1)] / count;
    var_values[static_cast<std::size_t>(c)] = moments[static_cast<std::size_t>(c * kMoments + 2)] / count;
  }
  Tensor mean = native::to(tensor(mean_values, {C}), dtype), var = native::to(tensor(var_values, {C}), dtype);
  Tensor y, rstd;  // not a structured binding: clang 14 cannot capture one in the lambda below
  std::tie(y, rstd) = batch_norm_normalize(x, mean, var, weight, bias, eps);
  if (running_mean.defined()) batch_norm_update_running_stats(running_mean, running_var, mean, var, count, momentum);

  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad();
  const bool gb = bias.defined() && bias.requires_grad();
  Tensor x_saved = native::contiguous(x);
  Tensor w_saved = weight.defined() ? native::contiguous(weight) : Tensor();
  return autograd::record(
      "SyncBatchNormBackward", y, {x, weight, bias},
      [x_saved, w_saved, mean, rstd, gx, gw, gb, count, C](const Tensor& g) {
        Tensor dy = native::contiguous(g);
        auto [sum_dy, sum_dy_xmu] = batch_norm_grad_sums(dy, x_saved, mean);
        // This rank's share of dweight = Σ dy·xhat and dbias = Σ dy.
        Tensor dweight = gw ? native::to(native::binary(native::BinaryOp::Mul, sum_dy_xmu, native::to(rstd, kFloat64)),
                                         dy.dtype())
                            : Tensor();
        Tensor dbias = gb ? native::to(sum_dy, dy.dtype()) : Tensor();
        Tensor dx;
        if (gx) {  // dx needs the sums over every rank's values: one all-reduce of [Σ dy, Σ dy·(x − mean)]
          Tensor sums = Tensor::empty({2, C}, kFloat64);
          native::copy_(native::select(sums, 0, 0), sum_dy);
          native::copy_(native::select(sums, 0, 1), sum_dy_xmu);
          dist::detail::all_reduce_raw("SyncBatchNormBackward", sums.raw_data(), 2 * C, MPI_DOUBLE, MPI_SUM);
          dx = batch_norm_grad_input(dy, x_saved, mean, rstd, w_saved, native::select(sums, 0, 0),
                                     native::select(sums, 0, 1), count);
        }
        return std::vector<Tensor>{dx, dweight, dbias};
      },
      {x, weight});
}

namespace nn {

SyncBatchNorm::SyncBatchNorm(std::int64_t features, BatchNormOptions opts) : BatchNormBase(features, opts) {}

SyncBatchNorm::SyncBatchNorm(const BatchNormBase& bn) : BatchNormBase(bn) {}

void SyncBatchNorm::check_input(const Tensor& input) const {
  TG_CHECK(input.dim() >= 2, "[SyncBatchNorm] expected at least 2D input (got {}D input of shape {})", input.dim(),
           input.sizes());
}

Tensor SyncBatchNorm::normalize(const Tensor& input, bool use_batch_stats, double momentum) {
  // Only training statistics are shared; a world of one needs no sharing (PyTorch's need_sync).
  const bool share = is_training() && use_batch_stats;
  TG_CHECK(!share || dist::is_initialized(),
           "[SyncBatchNorm] expected tg::dist::init() to have been called before training (the statistics are "
           "summed across ranks), got no process group");
  if (!share || dist::world_size() == 1) return BatchNormBase::normalize(input, use_batch_stats, momentum);
  return sync_batch_norm(input, running_mean, running_var, weight, bias, momentum, options.eps);
}

namespace {

// Throws when a batch norm below `module` runs fused with its activation (BatchNormAct1d / 2d, alone
// or inside a ConvBatchNormAct2d): it cannot become a SyncBatchNorm, and leaving it would train on
// each rank's own statistics without a word. path: module's own, "" at the top.
void check_no_fused_batchnorm(const Module& module, const std::string& path) {
  for (const auto& [name, child] : module.named_children()) {
    const std::string where = path.empty() ? name : path + "." + name;
    const auto* bn = dynamic_cast<const BatchNormBase*>(child.get());
    TG_CHECK(!bn || bn->name().rfind("BatchNormAct", 0) != 0,
             "[convert_sync_batchnorm] expected batch norms that can synchronize, got {} at '{}', which runs fused "
             "with its activation: convert the model before fusing it",
             bn ? bn->name() : "", where);
    check_no_fused_batchnorm(*child, where);
  }
}

void convert_children(Module& module) {
  for (const auto& [name, child] : std::vector(module.named_children())) {
    auto* bn = dynamic_cast<BatchNormBase*>(child.get());
    if (bn && (bn->name() == "BatchNorm1d" || bn->name() == "BatchNorm2d"))
      module.replace_module(name, std::make_shared<SyncBatchNorm>(*bn));
    else
      convert_children(*child);
  }
}

}  // namespace

void convert_sync_batchnorm(Module& module) {
  check_no_fused_batchnorm(module, "");  // before any change: a refused model stays as it was
  convert_children(module);
}

}  // namespace nn

}  // namespace tg
