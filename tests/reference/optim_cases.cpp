// Checkers for clip_grad_norm, clip_grad_value and optim_* cases.
#include "case_file.hpp"

namespace gradflow::reference {

void register_optim_checkers(Registry&) {}

}  // namespace gradflow::reference
