// tg::Error's throwing helpers, out of line so that checks stay small at their call sites.
// Layer: core.
#include "tapegrad/core/error.h"

namespace tg::detail {

void throw_error(std::string message) { throw Error(std::move(message)); }

void throw_internal(const char* file, int line, std::string message) {
  throw Error(fmt::format("internal error at {}:{}: {}", file, line, message));
}

}  // namespace tg::detail
