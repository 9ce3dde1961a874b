// What the CUDA part of the build can tell the Python layer: was it built,
// is a device usable, and if not, why (in the runtime's own words).
#pragma once
#include <string>

namespace tfg::cuda {

struct Status {
  bool built = false;        // compiled with the CUDA backend
  bool available = false;    // a driver and at least one device answered
  int device_count = 0;
  std::string reason;        // why not available ("" when available)
  bool emulated = false;     // the test build whose kernels run on the CPU (emulation/README.md)
};

// Queried once, then cached; safe to call from any thread.
const Status& status();

}  // namespace tfg::cuda
