// graft: header-only supervised pre-training and fine-tuning with compile-time typed networks.
// The umbrella header; each part can also be included on its own.
#pragma once
#include "graft/config.hpp"
#include "graft/data/data.hpp"
#include "graft/freeze/policy.hpp"
#include "graft/io/weights.hpp"
#include "graft/layers/activations.hpp"
#include "graft/layers/conv2d.hpp"
#include "graft/layers/dense.hpp"
#include "graft/layers/dropout.hpp"
#include "graft/layers/pooling.hpp"
#include "graft/model/heads.hpp"
#include "graft/model/model.hpp"
#include "graft/model/stack.hpp"
#include "graft/optim/optimizers.hpp"
#include "graft/tensor/tensor.hpp"
#include "graft/train/fit.hpp"
#include "graft/train/trainer.hpp"
