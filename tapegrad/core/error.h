// tg::Error and the two checks that throw it. Layer: core.
// TG_CHECK is for user input: the message starts with the op in brackets, says what was expected
// and what came; its arguments are formatted only on failure. TG_ASSERT is for internal
// invariants and adds file and line. Neither ever exits or aborts.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace tg {

class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
[[noreturn]] void throw_error(std::string message);
[[noreturn]] void throw_internal(const char* file, int line, std::string message);
}  // namespace detail

}  // namespace tg

#define TG_CHECK(cond, ...)                                                           \
  do {                                                                                \
    if (!(cond)) [[unlikely]] ::tg::detail::throw_error(fmt::format(__VA_ARGS__));    \
  } while (0)

#define TG_ASSERT(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) [[unlikely]]                                                         \
      ::tg::detail::throw_internal(__FILE__, __LINE__, fmt::format(__VA_ARGS__));     \
  } while (0)
