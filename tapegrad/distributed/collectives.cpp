// tg::dist on MPI: start-up and shutdown, the cross-rank agreement check, and the collectives.
// Layer: distributed.
#include "tapegrad/distributed/collectives.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tapegrad/core/native.h"
#include "tapegrad/distributed/mpi_comm.h"

namespace tg::dist {

namespace {

struct World {
  MPI_Comm comm = MPI_COMM_NULL;
  bool started_mpi = false;  // whether MPI_Finalize is ours to call
};

World& world() {
  static World w;
  return w;
}

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

// At normal exit only: a rank that leaves by an error calls abort() (or dies), never this, since
// MPI_Finalize waits for every rank.
void finalize_at_exit() {
  World& w = world();
  if (mpi_finalized()) return;
  if (w.comm != MPI_COMM_NULL) MPI_Comm_free(&w.comm);
  if (w.started_mpi) MPI_Finalize();
}

// --- the agreement check: one all-gather of a fixed-size description of each rank's call ---------

enum class Kind : std::int64_t { AllReduce = 1, Broadcast = 2, AllGather = 3 };
constexpr std::size_t kShownDims = 10;
// kind, dtype, argument (reduce op or root), dim, numel, hash of all sizes, the first kShownDims sizes.
constexpr std::size_t kHeader = 6 + kShownDims;
using Header = std::array<std::int64_t, kHeader>;

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "Sum";
    case ReduceOp::Max: return "Max";
    case ReduceOp::Min: return "Min";
    default: return "Product";
  }
}

Header describe(Kind kind, const Tensor& t, std::int64_t argument) {
  Header h{};
  h[0] = static_cast<std::int64_t>(kind);
  h[1] = static_cast<std::int64_t>(t.dtype());
  h[2] = argument;
  h[3] = t.dim();
  h[4] = t.numel();
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a over the sizes: dims beyond the shown ones count too
  for (std::int64_t s : t.sizes()) hash = (hash ^ static_cast<std::uint64_t>(s)) * 1099511628211ull;
  h[5] = static_cast<std::int64_t>(hash);
  for (std::size_t d = 0; d < std::min<std::size_t>(t.sizes().size(), kShownDims); ++d) h[6 + d] = t.sizes()[d];
  return h;
}

std::string call_text(const Header& h) {
  std::string what;
  switch (static_cast<Kind>(h[0])) {
    case Kind::AllReduce: what = fmt::format("all_reduce({})", op_name(static_cast<ReduceOp>(h[2]))); break;
    case Kind::Broadcast: what = fmt::format("broadcast(root={})", h[2]); break;
    default: what = "all_gather"; break;
  }
  const std::size_t dim = static_cast<std::size_t>(h[3]);
  std::string shape = dim <= kShownDims ? fmt::format("{}", Shape(h.begin() + 6, h.begin() + 6 + static_cast<std::ptrdiff_t>(dim)))
                                        : fmt::format("with {} dims", dim);
  return fmt::format("{} on a {} tensor of shape {}", what, dtype_name(static_cast<DType>(h[1])), shape);
}

// Every rank gathers every rank's description and compares them all with rank 0's, so that all
// ranks agree on the verdict and throw together (none is left waiting in the collective).
void check_agreement(const char* op, const Header& mine) {
  const std::vector<std::int64_t> all = detail::all_gather_raw(op, std::vector<std::int64_t>(mine.begin(), mine.end()));
  auto header = [&](std::size_t r) {
    Header h;
    std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(r * kHeader), kHeader, h.begin());
    return h;
  };
  for (std::size_t r = 1; r * kHeader < all.size(); ++r)
    TG_CHECK(header(r) == header(0),
             "[{}] expected every rank to make the same call, got rank 0 calling {} and rank {} calling {}", op,
             call_text(header(0)), r, call_text(header(r)));
}

void check_tensor(const char* op, const Tensor& t) {
  TG_CHECK(t.defined(), "[{}] expected a defined tensor, got an undefined one", op);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
    default: return MPI_PROD;
  }
}

// Runs `collective` on contiguous memory holding t's elements, then writes them back into t
// when t itself is not contiguous (the collective then worked on a copy).
template <class F>
void in_place(const Tensor& t, F collective) {
  Tensor buffer = t.is_contiguous() ? t : native::contiguous(t);
  collective(buffer.raw_data());
  if (buffer.is_same(t)) t.storage()->bump_version();
  else native::copy_(t, buffer);
}

}  // namespace

namespace detail {

MPI_Comm comm(std::string_view op) {
  TG_CHECK(world().comm != MPI_COMM_NULL, "[{}] expected tg::dist::init() to have been called, got no MPI process group",
           op);
  TG_CHECK(!mpi_finalized(), "[{}] expected MPI to be running, got MPI already finalized", op);
  return world().comm;
}

MPI_Datatype mpi_type(DType dtype) {
  return dtype == kFloat32 ? MPI_FLOAT : dtype == kFloat64 ? MPI_DOUBLE : MPI_INT64_T;
}

// MPI counts are ints: larger buffers go in pieces of at most INT_MAX elements (each piece is
// itself a collective every rank calls in the same order).
template <class F>
void in_pieces(void* data, std::int64_t count, MPI_Datatype type, F call) {
  int extent_bytes = 0;
  MPI_Type_size(type, &extent_bytes);
  char* p = static_cast<char*>(data);
  for (std::int64_t done = 0; done < count;) {
    const int n = static_cast<int>(std::min<std::int64_t>(count - done, INT_MAX));
    call(p + done * extent_bytes, n);
    done += n;
  }
}

void all_reduce_raw(std::string_view op, void* data, std::int64_t count, MPI_Datatype type, MPI_Op reduce) {
  MPI_Comm c = comm(op);
  in_pieces(data, count, type, [&](void* p, int n) { MPI_Allreduce(MPI_IN_PLACE, p, n, type, reduce, c); });
}

void broadcast_raw(std::string_view op, void* data, std::int64_t count, MPI_Datatype type, int root) {
  MPI_Comm c = comm(op);
  in_pieces(data, count, type, [&](void* p, int n) { MPI_Bcast(p, n, type, root, c); });
}

std::vector<std::int64_t> all_gather_raw(std::string_view op, const std::vector<std::int64_t>& mine) {
  MPI_Comm c = comm(op);
  int W = 0;
  MPI_Comm_size(c, &W);
  std::vector<std::int64_t> all(mine.size() * static_cast<std::size_t>(W));
  const int n = static_cast<int>(mine.size());
  MPI_Allgather(mine.data(), n, MPI_INT64_T, all.data(), n, MPI_INT64_T, c);
  return all;
}

}  // namespace detail

void init(int* argc, char*** argv) {
  World& w = world();
  if (w.comm != MPI_COMM_NULL) return;
  TG_CHECK(!mpi_finalized(), "[init] expected MPI not yet finalized, got MPI_Finalize already called");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    w.started_mpi = true;
    std::atexit(finalize_at_exit);
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &w.comm);
}

bool is_initialized() { return world().comm != MPI_COMM_NULL && !mpi_finalized(); }

int rank() {
  int r = 0;
  MPI_Comm_rank(detail::comm("rank"), &r);
  return r;
}

int world_size() {
  int w = 0;
  MPI_Comm_size(detail::comm("world_size"), &w);
  return w;
}

void all_reduce(const Tensor& tensor, ReduceOp op) {
  check_tensor("all_reduce", tensor);
  native::check_no_internal_overlap(tensor, "all_reduce");  // it writes in place
  check_agreement("all_reduce", describe(Kind::AllReduce, tensor, static_cast<std::int64_t>(op)));
  in_place(tensor, [&](void* data) {
    detail::all_reduce_raw("all_reduce", data, tensor.numel(), detail::mpi_type(tensor.dtype()), mpi_op(op));
  });
}

void broadcast(const Tensor& tensor, int root) {
  check_tensor("broadcast", tensor);
  native::check_no_internal_overlap(tensor, "broadcast");  // it writes in place
  const int W = world_size();
  TG_CHECK(root >= 0 && root < W, "[broadcast] expected a root rank in [0, {}), got root {}", W, root);
  check_agreement("broadcast", describe(Kind::Broadcast, tensor, root));
  in_place(tensor, [&](void* data) {
    detail::broadcast_raw("broadcast", data, tensor.numel(), detail::mpi_type(tensor.dtype()), root);
  });
}

Tensor all_gather(const Tensor& tensor) {
  check_tensor("all_gather", tensor);
  check_agreement("all_gather", describe(Kind::AllGather, tensor, 0));
  const int W = world_size();
  Shape sizes = tensor.sizes();
  sizes.insert(sizes.begin(), W);
  Tensor out = Tensor::empty(sizes, tensor.dtype());
  Tensor mine = native::contiguous(tensor);
  const std::int64_t n = tensor.numel();
  const MPI_Datatype type = detail::mpi_type(tensor.dtype());
  if (n <= INT_MAX) {
    MPI_Allgather(mine.raw_data(), static_cast<int>(n), type, out.raw_data(), static_cast<int>(n), type,
                  detail::comm("all_gather"));
  } else {  // too large for one call's int counts: rank r's piece goes out as a broadcast from r
    for (int r = 0; r < W; ++r) {
      Tensor row = native::select(out, 0, r);
      if (r == rank()) native::copy_(row, mine);
      detail::broadcast_raw("all_gather", row.raw_data(), n, type, r);
    }
  }
  return out;
}

void barrier() { MPI_Barrier(detail::comm("barrier")); }

void abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && !mpi_finalized()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

}  // namespace tg::dist
