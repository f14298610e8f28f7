// The consumer's own data/dataset.h, which once replaced tapegrad's and broke its dataloader.h
// ("'Dataset' does not name a type").
#pragma once

#include <cstdint>

namespace app {
struct Dataset {
  std::int64_t rows = 3;
};
}  // namespace app
