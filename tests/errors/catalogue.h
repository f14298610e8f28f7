// The catalogue's one check, shared by its single-process part (test_catalogue.cpp) and its
// distributed part (test_catalogue_dist.cpp, in the MPI test binary): a list of wrong calls, each
// of which must throw tg::Error whose message starts with the op in brackets. Layer: tests/errors.
#pragma once

#include <catch2/catch.hpp>

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/core/error.h"
#include "tapegrad/core/tensor.h"

namespace tg_test {

// One wrong call and the op its message must name.
struct BadCall {
  std::string op;
  std::function<void()> call;
};

// Runs every call; each must throw tg::Error whose message starts with "[op]".
inline void expect_errors(const std::vector<BadCall>& calls) {
  for (std::size_t i = 0; i < calls.size(); ++i) {
    INFO("bad call " << i << ", expected to name [" << calls[i].op << "]");
    try {
      calls[i].call();
      FAIL_CHECK("no exception");
    } catch (const tg::Error& e) {
      CHECK_THAT(std::string(e.what()), Catch::StartsWith("[" + calls[i].op + "]"));
    } catch (const std::exception& e) {
      FAIL_CHECK("not a tg::Error: " << e.what());
    }
  }
}

inline std::vector<double> values(const tg::Tensor& t) { return t.to_vector<double>(); }

}  // namespace tg_test
