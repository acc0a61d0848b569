#pragma once
/// \file
/// Learning-rate schedules: step decay, exponential decay, linear warm-up, cosine
/// annealing, and their composition; an LRScheduler applies one to an optimizer.

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/optim/optimizer.hpp"

namespace gradflow::optim {

/// A learning rate as a closed-form function of the step count (PyTorch's closed forms).
class Schedule {
 public:
  virtual ~Schedule() = default;
  /// The learning rate at `step` (0 = before the first scheduler step) from `base_lr`.
  virtual double lr(long step, double base_lr) const = 0;
};

/// lr = base gamma^floor(step / step_size) (torch.optim.lr_scheduler.StepLR).
class StepDecay : public Schedule {
 public:
  StepDecay(long step_size, double gamma = 0.1) : step_size_(step_size), gamma_(gamma) {
    if (step_size <= 0) throw ArgumentError("StepDecay: step_size must be > 0");
  }
  double lr(long step, double base) const override {
    return base * std::pow(gamma_, double(step / step_size_));
  }

 private:
  long step_size_;
  double gamma_;
};

/// lr = base gamma^step (ExponentialLR).
class ExponentialDecay : public Schedule {
 public:
  explicit ExponentialDecay(double gamma) : gamma_(gamma) {}
  double lr(long step, double base) const override { return base * std::pow(gamma_, double(step)); }

 private:
  double gamma_;
};

/// Linear warm-up from start_factor * base to base over `steps` steps, then base
/// (LinearLR with end_factor 1; Goyal et al. 2017).
class LinearWarmup : public Schedule {
 public:
  explicit LinearWarmup(long steps, double start_factor = 1.0 / 3.0)
      : steps_(steps), start_(start_factor) {
    if (steps <= 0) throw ArgumentError("LinearWarmup: steps must be > 0");
    if (!(start_factor > 0.0 && start_factor <= 1.0))
      throw ArgumentError("LinearWarmup: start_factor must be in (0, 1]");
  }
  double lr(long step, double base) const override {
    const double t = double(std::min(step, steps_)) / double(steps_);
    return base * (start_ + (1.0 - start_) * t);
  }

 private:
  long steps_;
  double start_;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi step / t_max)) / 2
/// (CosineAnnealingLR's closed form; Loshchilov & Hutter 2017).
class CosineAnnealing : public Schedule {
 public:
  explicit CosineAnnealing(long t_max, double eta_min = 0.0) : t_max_(t_max), eta_min_(eta_min) {
    if (t_max <= 0) throw ArgumentError("CosineAnnealing: t_max must be > 0");
  }
  double lr(long step, double base) const override {
    const double pi = 3.14159265358979323846;
    return eta_min_ +
           (base - eta_min_) * (1.0 + std::cos(pi * double(step) / double(t_max_))) / 2.0;
  }

 private:
  long t_max_;
  double eta_min_;
};

/// Runs schedules one after another: schedules[k] takes over at milestones[k-1], counting
/// its own steps from 0 there (SequentialLR). E.g. warm-up for 100 steps then cosine:
/// \code
///   SequentialSchedule s({std::make_shared<LinearWarmup>(100),
///                         std::make_shared<CosineAnnealing>(900)}, {100});
/// \endcode
class SequentialSchedule : public Schedule {
 public:
  SequentialSchedule(std::vector<std::shared_ptr<Schedule>> schedules, std::vector<long> milestones)
      : schedules_(std::move(schedules)), milestones_(std::move(milestones)) {
    if (schedules_.empty() || milestones_.size() + 1 != schedules_.size())
      throw ArgumentError("SequentialSchedule: need one milestone fewer than schedules");
    for (std::size_t i = 1; i < milestones_.size(); ++i)
      if (milestones_[i] <= milestones_[i - 1])
        throw ArgumentError("SequentialSchedule: milestones must increase");
  }
  double lr(long step, double base) const override {
    std::size_t k = 0;
    long start = 0;
    while (k < milestones_.size() && step >= milestones_[k]) start = milestones_[k++];
    return schedules_[k]->lr(step - start, base);
  }

 private:
  std::vector<std::shared_ptr<Schedule>> schedules_;
  std::vector<long> milestones_;
};

/// Drives an optimizer's learning rate with a schedule: call step() once per epoch (or
/// per iteration, as the schedule is designed). The optimizer's lr at construction is the
/// base rate.
template <typename T>
class LRScheduler {
 public:
  LRScheduler(Optimizer<T>& optimizer, std::shared_ptr<Schedule> schedule)
      : optimizer_(optimizer), schedule_(std::move(schedule)), base_lr_(optimizer.lr()) {
    if (!schedule_) throw ArgumentError("LRScheduler: null schedule");
    optimizer_.set_lr(schedule_->lr(0, base_lr_));
  }
  /// Advances one step and sets the optimizer's learning rate.
  void step() { optimizer_.set_lr(schedule_->lr(++step_, base_lr_)); }
  long last_step() const { return step_; }
  double lr() const { return optimizer_.lr(); }

 private:
  Optimizer<T>& optimizer_;
  std::shared_ptr<Schedule> schedule_;
  double base_lr_;
  long step_ = 0;
};

}  // namespace gradflow::optim
