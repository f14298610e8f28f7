// tapegrad's umbrella header: everything a user program needs.
#pragma once

#include "autograd/tape.h"
#include "core/parallel.h"
#include "core/print.h"
#include "core/random.h"
#include "core/tensor.h"
