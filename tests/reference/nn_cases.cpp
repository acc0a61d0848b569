// Checkers for mlp, batchnorm1d, and loss_* cases.
#include "case_file.hpp"

namespace gradflow::reference {

void register_nn_checkers(Registry&) {}

}  // namespace gradflow::reference
