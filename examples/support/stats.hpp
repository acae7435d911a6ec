// Mean and sample standard deviation over seeds, for the examples' tables.
#pragma once
#include <cmath>
#include <vector>

namespace examples {
struct stats {
  std::vector<double> values;
  double mean() const {
    double s = 0;
    for (double v : values) s += v;
    return values.empty() ? 0 : s / static_cast<double>(values.size());
  }
  double stddev() const {  // sample standard deviation
    if (values.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(values.size() - 1));
  }
};
}  // namespace examples
