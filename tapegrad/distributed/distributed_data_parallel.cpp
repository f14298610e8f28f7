// DistributedDataParallel: the model check and broadcast at construction, and the Reducer that
// the parameters' post-accumulate-grad hooks drive during backward. Layer: distributed.
#include "tapegrad/distributed/distributed_data_parallel.h"

#include <mpi.h>

#include <algorithm>
#include <map>
#include <string>

#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/native.h"
#include "tapegrad/distributed/collectives.h"
#include "tapegrad/distributed/mpi_comm.h"

namespace tg::nn {

namespace {

// The numel(like) elements of flat from `at`, as a view shaped like `like`.
Tensor piece(const Tensor& flat, std::int64_t at, const Tensor& like) {
  return native::view(native::slice(flat, 0, at, at + like.numel(), 1), like.sizes());
}

}  // namespace

namespace detail {

// One bucket: its parameters' gradients side by side in one flat buffer, all-reduced by one
// MPI_Iallreduce. Buckets are launched strictly in order (every rank issues the same collectives
// in the same order, as MPI requires), each as soon as it and all before it are complete.
struct Bucket {
  std::vector<std::size_t> params;    // indices into Reducer::params_
  std::vector<std::int64_t> offsets;  // where each one's gradient starts in flat
  Tensor flat;
  std::size_t pending = 0;            // gradients not yet copied in during this backward
  MPI_Request request = MPI_REQUEST_NULL;
};

class Reducer {
 public:
  Reducer(std::vector<Tensor> params, std::vector<std::string> names, double bucket_cap_mb)
      : params_(std::move(params)), names_(std::move(names)), arrived_(params_.size(), false) {
    world_ = dist::world_size();
    const auto cap = static_cast<std::int64_t>(bucket_cap_mb * 1024 * 1024);
    where_.resize(params_.size());
    std::int64_t bytes = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {  // reverse order: the last layers' gradients come first
      const Tensor& p = params_[k];
      const std::int64_t nbytes = p.numel() * static_cast<std::int64_t>(itemsize(p.dtype()));
      if (buckets_.empty() || bytes + nbytes > cap || params_[buckets_.back().params.front()].dtype() != p.dtype()) {
        buckets_.emplace_back();
        bytes = 0;
      }
      Bucket& b = buckets_.back();
      where_[k] = {buckets_.size() - 1, b.params.size()};
      b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
      b.params.push_back(k);
      bytes += nbytes;
    }
    for (Bucket& b : buckets_) {
      const Tensor& last = params_[b.params.back()];
      b.flat = Tensor::empty({b.offsets.back() + last.numel()}, last.dtype());
      b.pending = b.params.size();
    }
  }

  // Post-accumulate-grad hook of parameter k: its .grad is final for this backward.
  void ready(std::size_t k) {
    if (!sync) return;
    const auto [bucket, slot] = where_[k];
    Bucket& b = buckets_[bucket];
    const Tensor& p = params_[k];
    arrived_[k] = true;
    // Divided by W on the way in: the sum the all-reduce forms is then the mean.
    Tensor into = piece(b.flat, b.offsets[slot], p);
    native::copy_(into, p.grad());
    native::binary_(native::BinaryOp::Div, into, world_);
    --b.pending;
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) launch(buckets_[next_++]);
    if (next_ == buckets_.size()) finish();
    else poke();
  }

  // Throws, after waiting for what was launched, when the last backward did not complete every
  // bucket. Every rank runs the same model, so all of them stop at the same bucket.
  void check_finished() {
    if (std::none_of(arrived_.begin(), arrived_.end(), [](bool a) { return a; })) return;
    std::vector<std::string> missing;
    for (std::size_t k = 0; k < params_.size(); ++k)
      if (!arrived_[k]) missing.push_back(names_[k]);
    wait_launched();
    reset();
    TG_CHECK(false,
             "[DistributedDataParallel] expected the previous backward to give every parameter a gradient, got none "
             "for {}: a parameter that takes no part in the loss leaves its bucket unreduced (remove it from the "
             "model, or set requires_grad false on it)",
             fmt::join(missing, ", "));
  }

  std::vector<std::int64_t> bucket_sizes() const {
    std::vector<std::int64_t> out;
    for (const Bucket& b : buckets_) out.push_back(static_cast<std::int64_t>(b.params.size()));
    return out;
  }

  bool sync = true;

 private:
  void launch(Bucket& b) {
    MPI_Iallreduce(MPI_IN_PLACE, b.flat.raw_data(), static_cast<int>(b.flat.numel()), dist::detail::mpi_type(b.flat.dtype()),
                   MPI_SUM, dist::detail::comm("DistributedDataParallel"), &b.request);
  }

  // Open MPI moves a non-blocking collective forward only inside MPI calls: each hook gives the
  // launched buckets a chance to progress while backward computes.
  void poke() {
    for (std::size_t i = 0; i < next_; ++i) {
      int done = 0;
      if (buckets_[i].request != MPI_REQUEST_NULL) MPI_Test(&buckets_[i].request, &done, MPI_STATUS_IGNORE);
    }
  }

  void wait_launched() {
    for (std::size_t i = 0; i < next_; ++i) MPI_Wait(&buckets_[i].request, MPI_STATUS_IGNORE);
  }

  // Every bucket launched: wait for them and write the means back into .grad.
  void finish() {
    wait_launched();
    for (Bucket& b : buckets_)
      for (std::size_t slot = 0; slot < b.params.size(); ++slot) {
        const Tensor& p = params_[b.params[slot]];
        native::copy_(p.grad(), piece(b.flat, b.offsets[slot], p));
      }
    reset();
  }

  void reset() {
    next_ = 0;
    std::fill(arrived_.begin(), arrived_.end(), false);
    for (Bucket& b : buckets_) b.pending = b.params.size(), b.request = MPI_REQUEST_NULL;
  }

  std::vector<Tensor> params_;
  std::vector<std::string> names_;
  std::vector<bool> arrived_;       // gradient final in this backward
  std::vector<std::pair<std::size_t, std::size_t>> where_;  // parameter -> (bucket, slot)
  std::vector<Bucket> buckets_;
  std::size_t next_ = 0;            // the next bucket to launch
  int world_ = 1;
};

}  // namespace detail

namespace {

// One line per parameter and buffer: name, shape, dtype.
std::string describe(const Module& m) {
  std::string text;
  for (const auto& [name, t] : m.named_parameters()) text += fmt::format("parameter {} {} {}\n", name, t.sizes(), dtype_name(t.dtype()));
  for (const auto& [name, t] : m.named_buffers()) text += fmt::format("buffer {} {} {}\n", name, t.sizes(), dtype_name(t.dtype()));
  return text;
}

std::int64_t fnv1a(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return static_cast<std::int64_t>(h);
}

// Every rank's model must read as rank 0's: else every rank throws, the ones that differ naming
// their first difference.
void check_same_model(const Module& m) {
  const std::string mine = describe(m);
  const std::vector<std::int64_t> hashes = dist::detail::all_gather_raw("DistributedDataParallel", {fnv1a(mine)});
  std::vector<std::size_t> differing;
  for (std::size_t r = 1; r < hashes.size(); ++r)
    if (hashes[r] != hashes[0]) differing.push_back(r);
  if (differing.empty()) return;
  std::vector<std::int64_t> length{static_cast<std::int64_t>(mine.size())};
  dist::detail::broadcast_raw("DistributedDataParallel", length.data(), 1, MPI_INT64_T, 0);
  std::string root(static_cast<std::size_t>(length[0]), '\0');
  if (dist::rank() == 0) root = mine;
  dist::detail::broadcast_raw("DistributedDataParallel", root.data(), length[0], MPI_CHAR, 0);
  std::string here = "this rank has the same model as rank 0";
  if (mine != root) {
    std::size_t at = 0;
    while (at < mine.size() && at < root.size() && mine[at] == root[at]) ++at;
    auto line = [&](const std::string& s) {
      const std::size_t begin = s.rfind('\n', at == 0 ? 0 : at - 1);
      const std::size_t from = begin == std::string::npos || at == 0 ? 0 : begin + 1;
      const std::string l = s.substr(from, s.find('\n', from) - from);
      return l.empty() ? std::string("nothing") : l;
    };
    here = fmt::format("rank {} has {} where rank 0 has {}", dist::rank(), line(mine), line(root));
  }
  TG_CHECK(false,
           "[DistributedDataParallel] expected every rank's model to have rank 0's parameters and buffers (names, "
           "shapes, dtypes), got ranks {} differing; {}",
           fmt::join(differing, ", "), here);
}

// Rank 0's values of `tensors` into every rank's, one broadcast per dtype.
void broadcast_from_root(const std::vector<Tensor>& tensors) {
  if (dist::world_size() == 1) return;
  NoGradGuard no_grad;
  std::map<DType, std::vector<Tensor>> by_dtype;
  for (const Tensor& t : tensors) by_dtype[t.dtype()].push_back(t);
  for (const auto& [dtype, group] : by_dtype) {
    std::int64_t n = 0;
    for (const Tensor& t : group) n += t.numel();
    Tensor flat = Tensor::empty({n}, dtype);
    std::int64_t at = 0;
    for (const Tensor& t : group) {
      native::copy_(piece(flat, at, t), t);
      at += t.numel();
    }
    dist::detail::broadcast_raw("DistributedDataParallel", flat.raw_data(), n, dist::detail::mpi_type(dtype), 0);
    at = 0;
    for (const Tensor& t : group) {
      native::copy_(t, piece(flat, at, t));
      at += t.numel();
    }
  }
}

}  // namespace

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options)
    : module_(std::move(module)), options_(options) {
  TG_CHECK(module_ != nullptr, "[DistributedDataParallel] expected a module, got null");
  TG_CHECK(options.bucket_cap_mb > 0, "[DistributedDataParallel] expected bucket_cap_mb > 0, got {}",
           options.bucket_cap_mb);
  TG_CHECK(dist::is_initialized(), "[DistributedDataParallel] expected tg::dist::init() to have been called, got no "
           "process group");
  register_module("module", module_);
  check_same_model(*module_);
  broadcast_from_root(module_->parameters());
  broadcast_from_root(module_->buffers());
  std::vector<Tensor> trained;
  std::vector<std::string> names;
  for (const auto& [name, p] : module_->named_parameters())
    if (p.requires_grad() &&
        // p through an init-capture: clang 14 cannot capture a structured binding.
        std::none_of(trained.begin(), trained.end(), [&p = p](const Tensor& q) { return q.is_same(p); })) {
      trained.push_back(p);
      names.push_back(name);
    }
  reducer_ = std::make_shared<detail::Reducer>(trained, names, options.bucket_cap_mb);
  for (std::size_t k = 0; k < trained.size(); ++k)
    hooks_.push_back(trained[k].register_post_accumulate_grad_hook(
        [reducer = std::weak_ptr<detail::Reducer>(reducer_), k](const Tensor&) {
          if (auto r = reducer.lock()) r->ready(k);
        }));
}

DistributedDataParallel::~DistributedDataParallel() {
  for (RemovableHandle& h : hooks_) h.remove();
}

Tensor DistributedDataParallel::forward(const Tensor& input) {
  reducer_->check_finished();
  if (options_.broadcast_buffers) broadcast_from_root(module_->buffers());
  return (*module_)(input);
}

std::vector<std::int64_t> DistributedDataParallel::bucket_sizes() const { return reducer_->bucket_sizes(); }

DistributedDataParallel::NoSync::NoSync(std::shared_ptr<detail::Reducer> reducer)
    : reducer_(std::move(reducer)), previous_(reducer_->sync) {
  reducer_->sync = false;
}

DistributedDataParallel::NoSync::~NoSync() { reducer_->sync = previous_; }

}  // namespace tg::nn
