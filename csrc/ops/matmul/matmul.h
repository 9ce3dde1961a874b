// matmul and linear: argument checks, shape rules (torch.matmul / F.linear
// semantics, broadcast batch dimensions) and routing to the device's GEMM.
#pragma once
#include "core/array.h"

namespace tfg {

Array matmul(const Array& a, const Array& b);
Array linear(const Array& x, const Array& weight, const Array* bias);

}  // namespace tfg
