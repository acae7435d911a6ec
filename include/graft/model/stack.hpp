// stack<input<...>, Specs...> lives in layers/stack.hpp (a residual block binds a stack of its
// own, and layers include nothing from model/); this header keeps the model-level include working.
#pragma once
#include "graft/layers/stack.hpp"
