// The functional layer ops, each with a hand-derived backward recorded as one tape entry, for
// code that wants them without the modules: every family header declares its function(s) next
// to its module(s). Layer: layers.
#pragma once

#include "tapegrad/layers/batchnorm.h"
#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/activation.h"
#include "tapegrad/layers/dropout.h"
#include "tapegrad/layers/embedding.h"
#include "tapegrad/layers/layernorm.h"
#include "tapegrad/layers/linear.h"
#include "tapegrad/layers/losses.h"
#include "tapegrad/layers/pooling.h"
