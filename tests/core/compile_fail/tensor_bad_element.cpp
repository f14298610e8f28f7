// Must NOT compile: tg::tensor of an element type tapegrad has no dtype for stops at the
// static_assert in tensor.h, naming the types it takes (tests/CMakeLists.txt checks the message),
// rather than failing to link. Layer: tests.
#include <vector>

#include "tapegrad/core/tensor.h"

tg::Tensor from_bools() { return tg::tensor({true, false}); }
tg::Tensor from_unsigned() { return tg::tensor(std::vector<unsigned>{1u, 2u}, {2}); }
