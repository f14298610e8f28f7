// The Catch2 main of tapegrad_dist_tests, one MPI job: every rank runs every test case in the
// same order (their collectives keep the ranks in step). The job fails when any rank fails.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tapegrad.h"

int main(int argc, char** argv) {
  tg::dist::init(&argc, &argv);
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) tg::dist::abort(rc);
  tg::Tensor failed = tg::full({1}, std::int64_t(session.run() != 0), tg::kInt64);
  tg::dist::all_reduce(failed, tg::dist::ReduceOp::Max);  // every rank exits with the job's verdict
  return static_cast<int>(failed.item<std::int64_t>());
}
