// tapegrad's umbrella header: everything a user program needs. The distributed layer
// (tg::dist, SyncBatchNorm, DistributedDataParallel, DistributedSampler) is there when the library
// was built on MPI: TG_WITH_MPI (tapegrad/config.h) is then 1.
#pragma once

#include "tapegrad/config.h"

#include "tapegrad/autograd/functions.h"
#include "tapegrad/autograd/gradcheck.h"
#include "tapegrad/autograd/graph.h"
#include "tapegrad/autograd/tape.h"
#include "tapegrad/core/parallel.h"
#include "tapegrad/core/print.h"
#include "tapegrad/core/random.h"
#include "tapegrad/core/tensor.h"
#include "tapegrad/data/dataloader.h"
#include "tapegrad/data/dataset.h"
#include "tapegrad/data/fashion_mnist.h"
#include "tapegrad/data/idx.h"
#include "tapegrad/data/sampler.h"
#include "tapegrad/layers/activation.h"
#include "tapegrad/layers/batchnorm.h"
#include "tapegrad/layers/clip_grad.h"
#include "tapegrad/layers/conv2d.h"
#include "tapegrad/layers/dropout.h"
#include "tapegrad/layers/embedding.h"
#include "tapegrad/layers/flatten.h"
#include "tapegrad/layers/fusion.h"
#include "tapegrad/layers/init.h"
#include "tapegrad/layers/layernorm.h"
#include "tapegrad/layers/linear.h"
#include "tapegrad/layers/losses.h"
#include "tapegrad/layers/module.h"
#include "tapegrad/layers/pooling.h"
#include "tapegrad/layers/sequential.h"
#include "tapegrad/layers/serialize.h"
#include "tapegrad/optim/adagrad.h"
#include "tapegrad/optim/adam.h"
#include "tapegrad/optim/lr_scheduler.h"
#include "tapegrad/optim/optimizer.h"
#include "tapegrad/optim/rmsprop.h"
#include "tapegrad/optim/sgd.h"

#if TG_WITH_MPI
#include "tapegrad/distributed/collectives.h"
#include "tapegrad/distributed/distributed_data_parallel.h"
#include "tapegrad/distributed/distributed_sampler.h"
#include "tapegrad/distributed/sync_batchnorm.h"
#endif
