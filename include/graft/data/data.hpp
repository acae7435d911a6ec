// graft/data: IDX and .npy files, datasets and the MNIST / Fashion-MNIST sources. Light (no
// xtensor). CSV files need libcsv: include graft/data/csv.hpp yourself.
#pragma once
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"
#include "graft/data/npy.hpp"
#include "graft/data/sources.hpp"
