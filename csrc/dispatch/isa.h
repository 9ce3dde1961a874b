// CPU ISA levels, what this CPU supports, and the level kernels run at.
//
// The active level starts as the best level that is both built and supported,
// lowered by TENSORFORGE_ISA=scalar|avx2|avx512 when set. Kernel tables are
// picked per call through isa_select(), so tests may switch levels at run time.
#pragma once
#include <string>
#include <vector>

namespace tfg {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
bool isa_from_name(const std::string& name, Isa* out);

std::vector<Isa> isa_built();        // compiled into this module
bool isa_supported(Isa isa);         // this CPU and OS can run it
Isa best_isa();                      // best built and supported
Isa active_isa();
// Sets the level; throws ValueError if it is not built or not supported here.
void set_active_isa(Isa isa);
// A note for `info` when TENSORFORGE_ISA asked for something that could not be honoured.
const std::string& isa_env_note();

// Picks the table of level `isa`; levels not built fall back downward.
template <class Table>
const Table& isa_select(Isa isa, const Table& scalar, const Table* avx2, const Table* avx512) {
  switch (isa) {
    case Isa::avx512: if (avx512) return *avx512; [[fallthrough]];
    case Isa::avx2: if (avx2) return *avx2; [[fallthrough]];
    default: return scalar;
  }
}

}  // namespace tfg

// Declares the per-ISA instances of a kernel table and defines an accessor that
// returns the active one: TFG_ISA_TABLE(GemmKernels<float>, gemm_kernels_f32).
// The definitions live in the per-ISA kernel sources (namespace tfg::<isa>).
#if defined(TFG_HAVE_ISA_AVX2)
#define TFG_ISA_DECL_AVX2(Type, name) namespace avx2 { extern const Type name; }
#define TFG_ISA_PTR_AVX2(name) &avx2::name
#else
#define TFG_ISA_DECL_AVX2(Type, name)
#define TFG_ISA_PTR_AVX2(name) nullptr
#endif
#if defined(TFG_HAVE_ISA_AVX512)
#define TFG_ISA_DECL_AVX512(Type, name) namespace avx512 { extern const Type name; }
#define TFG_ISA_PTR_AVX512(name) &avx512::name
#else
#define TFG_ISA_DECL_AVX512(Type, name)
#define TFG_ISA_PTR_AVX512(name) nullptr
#endif
#define TFG_ISA_TABLE(Type, name)                                                     \
  namespace scalar { extern const Type name; }                                        \
  TFG_ISA_DECL_AVX2(Type, name)                                                       \
  TFG_ISA_DECL_AVX512(Type, name)                                                     \
  inline const Type& name##_for(::tfg::Isa isa) {                                     \
    return ::tfg::isa_select<Type>(isa, scalar::name, TFG_ISA_PTR_AVX2(name),         \
                                   TFG_ISA_PTR_AVX512(name));                         \
  }                                                                                   \
  inline const Type& active_##name() { return name##_for(::tfg::active_isa()); }
