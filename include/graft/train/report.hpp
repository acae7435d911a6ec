// What a training run reports, and the error the divergence guard throws with it.
#pragma once
#include <cstddef>
#include <string>
#include <utility>

#include "graft/train/trainer.hpp"

GRAFT_BEGIN_NAMESPACE

/// What a training run reports.
struct train_report {
  std::size_t epochs = 0;
  std::size_t steps = 0;
  std::size_t samples = 0;
  double final_loss = 0;  ///< mean loss over the last epoch (or the run, when shorter)
  double seconds = 0;
  bool cached_features = false;  ///< whether a frozen prefix was computed once and cached
  std::size_t resumed_from = 0;  ///< steps taken before this call (resume{...}), else 0
  bool diverged = false;         ///< the divergence guard stopped the run (see divergence_guard)
  std::size_t best_step = 0;     ///< divergence guard: the step whose weights were restored
  double best_loss = 0;          ///< divergence guard: that step's loss
  double samples_per_second() const {
    return seconds > 0 ? static_cast<double>(samples) / seconds : 0;
  }
};

/// Thrown when the divergence guard stops a run; report() says where it stopped and which step's
/// weights the model holds now.
class divergence_error : public training_error {
 public:
  divergence_error(const std::string& what, train_report r) : training_error(what), report_(r) {}
  const train_report& report() const noexcept { return report_; }

 private:
  train_report report_;
};

GRAFT_END_NAMESPACE
