// Faults in an MPI job: when one rank throws mid-training or is killed, `mpiexec -n 2` ends with a
// non-zero exit and the rank's message instead of leaving the others waiting in a collective
// forever. Each job runs under `timeout 60`: exit 124 would mean it hung. Part of tapegrad_tests
// (it launches jobs, it is not one). Tags [distributed] [errors].
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <string>

using Catch::Contains;

namespace {

struct Job {
  int exit_code;
  std::string output;
};

Job run_job(const std::string& mode) {
  const std::string command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                              "OMPI_MCA_rmaps_base_oversubscribe=1 timeout 60 " TG_MPIEXEC " -n 2 " TG_FAULT_JOB " " +
                              mode + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Job job{-1, ""};
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) job.output.append(buffer, n);
  const int status = pclose(pipe);
  job.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return job;
}

}  // namespace

TEST_CASE("an MPI job whose ranks all succeed exits 0", "[distributed]") {
  Job job = run_job("none");
  INFO(job.output);
  CHECK(job.exit_code == 0);
  CHECK_THAT(job.output, Contains("fault_job: 20 steps on 2 ranks"));
}

TEST_CASE("an MPI job ends, non-zero and with the message, when a rank throws mid-training",
          "[distributed][errors]") {
  Job job = run_job("throw");
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.exit_code != 124);  // not ended by the watchdog: it did not hang
  CHECK_THAT(job.output, Contains("fault_job: rank 1: [fault_job] rank 1 fails at step 3 on purpose"));
}

TEST_CASE("an MPI job ends, non-zero, when a rank is killed mid-training", "[distributed][errors]") {
  Job job = run_job("kill");
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.exit_code != 124);
  CHECK_THAT(job.output, Contains("exited on signal 9"));
}
