// tg::dist: the process group of an MPI job and its collectives on tensors, as torch.distributed
// (one world, the ranks started by `mpiexec -n W prog`; without mpiexec a program is a world of
// one). Every collective is called by every rank in the same order; each checks first, with one
// small all-gather, that all ranks called the same collective on tensors of one dtype and shape,
// and otherwise throws on every rank. Layer: distributed (on MPI); must not know modules.
#pragma once

#include "tapegrad/core/tensor.h"

namespace tg::dist {

enum class ReduceOp { Sum, Max, Min, Product };

// Starts MPI (MPI_Init_thread, MPI calls funneled through the calling thread) or joins an MPI
// that the program initialized itself; the library then finalizes MPI when the program exits
// normally, if it started it. Calling it again does nothing. argc and argv may be null.
void init(int* argc = nullptr, char*** argv = nullptr);
bool is_initialized();

// This process's rank in [0, world_size()) and the number of processes. Throw before init().
int rank();
int world_size();

// In place on every rank: the element-wise reduction over all ranks' tensors (float32, float64
// or int64, any strides). Every rank ends with the same values.
void all_reduce(const Tensor& tensor, ReduceOp op = ReduceOp::Sum);
// In place: every rank's tensor takes root's values. Throws for a root outside [0, world_size()).
void broadcast(const Tensor& tensor, int root);
// The ranks' tensors stacked along a new first dimension, [W, *tensor.sizes()], on every rank.
Tensor all_gather(const Tensor& tensor);
// Returns once every rank has called it.
void barrier();

// Ends every process of the job now with exit_code (MPI_Abort). The way out after an error on one
// rank: returning from main would wait in MPI_Finalize for ranks that wait in a collective for
// this one, forever. Before init() it just exits.
[[noreturn]] void abort(int exit_code = 1);

}  // namespace tg::dist
