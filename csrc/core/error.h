// Exceptions the C++ layer throws for bad input; the bindings translate them to
// Python's ValueError / TypeError. Messages name the op, the argument and what it got.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tfg {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Concatenates its arguments with operator<< into one message.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

#define TFG_CHECK_VALUE(cond, ...) \
  do { if (!(cond)) throw ::tfg::ValueError(::tfg::cat(__VA_ARGS__)); } while (0)
#define TFG_CHECK_TYPE(cond, ...) \
  do { if (!(cond)) throw ::tfg::TypeError(::tfg::cat(__VA_ARGS__)); } while (0)

}  // namespace tfg
