// graft/data: IDX files, datasets and the MNIST / Fashion-MNIST sources. Light (no xtensor).
#pragma once
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"
#include "graft/data/sources.hpp"
