// graft/inference.hpp: everything needed to run a trained model, nothing to train it: stacks,
// layers, heads, models, weights in memory and the runner. No optimizers, freezing policies,
// trainers or data sets (the include-graph test in tests/ checks it).
#pragma once
#include "graft/config.hpp"
#include "graft/layers/activations.hpp"
#include "graft/layers/attention.hpp"
#include "graft/layers/batch_norm.hpp"
#include "graft/layers/conv1d.hpp"
#include "graft/layers/conv2d.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/dropout.hpp"
#include "graft/layers/embedding.hpp"
#include "graft/layers/encoder.hpp"
#include "graft/layers/lora.hpp"
#include "graft/layers/per_position.hpp"
#include "graft/layers/pooling.hpp"
#include "graft/layers/residual.hpp"
#include "graft/layers/sequence_pool.hpp"
#include "graft/layers/stack.hpp"
#include "graft/model/constant.hpp"
#include "graft/model/heads.hpp"
#include "graft/model/model.hpp"
#include "graft/model/runner.hpp"
