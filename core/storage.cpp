// Storage allocation. Layer: core.
#include "core/storage.h"

#include <cstdlib>
#include <new>

namespace tg {

namespace {
constexpr std::size_t kAlign = 64;
}

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  std::size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  data_ = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (!data_) throw std::bad_alloc();
}

Storage::~Storage() { std::free(data_); }

}  // namespace tg
