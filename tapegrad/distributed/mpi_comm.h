// What the distributed layer's own files share about MPI: the library's communicator (a
// duplicate of MPI_COMM_WORLD, so a program's own MPI traffic never matches ours), element types,
// and raw collectives over contiguous memory that skip the public API's cross-rank checks (their
// callers have checked once: SyncBatchNorm's fixed per-channel sizes, DDP's verified model).
// Layer: distributed (internal header; users go through collectives.h).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "tapegrad/core/dtype.h"

namespace tg::dist::detail {

// The library's communicator; throws "[op] ... init()" before tg::dist::init().
MPI_Comm comm(std::string_view op);
MPI_Datatype mpi_type(DType dtype);

// In place over count elements at data, on comm(op); counts beyond MPI's int go in pieces.
void all_reduce_raw(std::string_view op, void* data, std::int64_t count, MPI_Datatype type, MPI_Op reduce);
void broadcast_raw(std::string_view op, void* data, std::int64_t count, MPI_Datatype type, int root);
// Every rank's `mine` (all of one length), concatenated in rank order.
std::vector<std::int64_t> all_gather_raw(std::string_view op, const std::vector<std::int64_t>& mine);

}  // namespace tg::dist::detail
