// CPU feature detection (cpuid + xgetbv) and the active ISA level.
#include "dispatch/isa.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define TFG_X86 1
#endif

namespace tfg {

namespace {

#ifdef TFG_X86
// Note [OS support]: a CPU flag is not enough; the OS must also save the wide
// registers on context switch (XCR0 bits), or AVX code faults.
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool detect(Isa isa) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!osxsave || !avx || !fma) return false;
  uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return false;  // SSE + AVX state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  bool avx2 = b & (1u << 5);
  if (isa == Isa::avx2) return avx2;
  bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
  bool zmm_state = (xcr0 & 0xE6) == 0xE6;  // opmask, ZMM_Hi256, Hi16_ZMM
  return avx2 && f && dq && bw && vl && zmm_state;
}
#else
bool detect(Isa) { return false; }
#endif

std::string g_env_note;

Isa initial_isa() {
  Isa best = best_isa();
  const char* env = std::getenv("TENSORFORGE_ISA");
  if (!env || !*env) return best;
  Isa wanted;
  if (!isa_from_name(env, &wanted)) {
    g_env_note = cat("TENSORFORGE_ISA=", env, " is not one of scalar, avx2, avx512; using ",
                     isa_name(best));
    return best;
  }
  if (wanted > best) {
    g_env_note = cat("TENSORFORGE_ISA=", env, " is not available here; using ", isa_name(best));
    return best;
  }
  return wanted;
}

std::atomic<int>& active() {
  static std::atomic<int> level{static_cast<int>(initial_isa())};
  return level;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

bool isa_from_name(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (name == isa_name(isa)) { *out = isa; return true; }
  return false;
}

std::vector<Isa> isa_built() {
  std::vector<Isa> built{Isa::scalar};
#ifdef TFG_HAVE_ISA_AVX2
  built.push_back(Isa::avx2);
#endif
#ifdef TFG_HAVE_ISA_AVX512
  built.push_back(Isa::avx512);
#endif
  return built;
}

bool isa_supported(Isa isa) {
  if (isa == Isa::scalar) return true;
  static const bool avx2 = detect(Isa::avx2), avx512 = detect(Isa::avx512);
  return isa == Isa::avx2 ? avx2 : avx512;
}

Isa best_isa() {
  Isa best = Isa::scalar;
  for (Isa isa : isa_built())
    if (isa_supported(isa)) best = isa;
  return best;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  bool built = false;
  for (Isa b : isa_built()) built |= (b == isa);
  TFG_CHECK_VALUE(built, "ISA level '", isa_name(isa), "' was not compiled into this build");
  TFG_CHECK_VALUE(isa_supported(isa), "ISA level '", isa_name(isa), "' is not supported by this CPU");
  active().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const std::string& isa_env_note() {
  active();  // make sure the environment has been read
  return g_env_note;
}

}  // namespace tfg
