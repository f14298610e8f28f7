// The thread count shared by OpenMP kernels and OpenBLAS. Layer: core.
#include "core/parallel.h"

#include <omp.h>

#include "core/blas.h"
#include "core/error.h"

namespace tg {

void set_num_threads(int n) {
  TG_CHECK(n >= 1, "[set_num_threads] expected a positive number of threads, got {}", n);
  omp_set_num_threads(n);
  blas::set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace tg
