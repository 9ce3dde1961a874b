// The SIMT scheduler of the emulation (simt.h, README.md): every CUDA thread
// of a block is a fiber on the OS thread that runs the block; a fiber runs
// until it blocks at a barrier or warp collective (or returns), then the next
// runnable one runs, in thread order. Blocks of a grid are spread over the
// OpenMP threads by tfg::parallel_for (one block per item).
#include "cuda/emulation/simt.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "cuda/cuda_check.h"

#if !defined(__x86_64__)
#error "the SIMT emulation's context switch is written for x86-64 (System V ABI)"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TFG_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TFG_SIMT_ASAN 1
#endif
#endif
#ifdef TFG_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Note [context switch]: tfg_simt_switch(save, next) pushes the callee-saved
// registers of the System V ABI (rbx, rbp, r12-r15) on the current stack,
// stores the stack pointer in *save, loads `next` and pops the same registers
// from there; the `ret` resumes whatever called tfg_simt_switch on that stack.
// Everything else is caller-saved, so the compiler has already spilled it.
// MXCSR and the x87 control word are callee-saved too but shared by all
// fibers: kernels do not change them. A new fiber's stack is laid out as if
// it had called tfg_simt_switch from tfg_simt_fiber_start, with the Fiber* in
// the rbx slot (init_stack below). No signal mask is touched (swapcontext
// makes a system call per switch for that: design.md section 4).
extern "C" {
void tfg_simt_switch(void** save_sp, void* next_sp);
void tfg_simt_fiber_start();
}
asm(R"(
  .text
  .p2align 4
  .globl tfg_simt_switch
  .hidden tfg_simt_switch
  .type tfg_simt_switch, @function
tfg_simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tfg_simt_switch, .-tfg_simt_switch

  .p2align 4
  .globl tfg_simt_fiber_start
  .hidden tfg_simt_fiber_start
  .type tfg_simt_fiber_start, @function
tfg_simt_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %rbx, %rdi
  call tfg_simt_fiber_main
  ud2
  .cfi_endproc
  .size tfg_simt_fiber_start, .-tfg_simt_fiber_start
)");

namespace tfg::simt {

namespace detail {
thread_local const ThreadState* t_thread = nullptr;
}  // namespace detail

namespace {

using detail::BarrierOp;
using detail::WarpOp;

// Thrown inside a fiber for misuse of an intrinsic; run_block adds the kernel,
// block and thread to its message.
struct SimtError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#ifdef TFG_SIMT_ASAN
constexpr size_t kStackBytes = 256 * 1024;  // ASan's redzones make frames larger
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif

enum class State : uint8_t { Runnable, Waiting, Done };
enum class Wait : uint8_t { None, Barrier, Warp };

struct Fiber {
  // The stack: mapped once, reused by every block this OS thread runs.
  char* map = nullptr;    // guard page + stack
  char* stack = nullptr;  // lowest usable address
  void* sp = nullptr;     // saved stack pointer while switched out
  void* fake_stack = nullptr;  // ASan's fake stack of this fiber while switched out

  ThreadState ts{};
  int linear = 0, warp = 0, lane = 0;
  State state = State::Runnable;
  Wait wait = Wait::None;
  Site site{};
  int op = 0, pred = 0, arg = 0, width = 0;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
};

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

// Fibers of one OS thread, grown to the largest block it has run.
struct FiberPool {
  std::vector<std::unique_ptr<Fiber>> fibers;
  ~FiberPool() {
    for (auto& f : fibers) munmap(f->map, kStackBytes + page_size());
  }
  void ensure(int n) {
    while (static_cast<int>(fibers.size()) < n) {
      auto f = std::make_unique<Fiber>();
      const size_t guard = page_size();
      void* m = mmap(nullptr, kStackBytes + guard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (m == MAP_FAILED) throw std::bad_alloc();
      f->map = static_cast<char*>(m);
      mprotect(f->map, guard, PROT_NONE);  // overflow faults instead of corrupting a neighbour
      f->stack = f->map + guard;
      fibers.push_back(std::move(f));
    }
  }
};

struct BlockRun {
  const detail::Launch* launch = nullptr;
  Fiber** fibers = nullptr;  // linear thread id -> fiber
  int n = 0;
  int arrived = 0;  // at the block barrier
  void* dynamic_shared = nullptr;
  std::exception_ptr error;
  int error_thread = -1;
};

thread_local FiberPool t_pool;
thread_local BlockRun* t_block = nullptr;
thread_local Fiber* t_fiber = nullptr;
thread_local void* t_scheduler_sp = nullptr;
#ifdef TFG_SIMT_ASAN
thread_local const void* t_scheduler_stack = nullptr;
thread_local size_t t_scheduler_stack_size = 0;
#endif

void init_stack(Fiber& f) {
#ifdef TFG_SIMT_ASAN
  // An abandoned fiber (Note [abandoned blocks]) leaves its frames' redzones poisoned.
  ASAN_UNPOISON_MEMORY_REGION(f.stack, kStackBytes);
#endif
  auto* top = reinterpret_cast<uint64_t*>(f.stack + kStackBytes);  // 16-byte aligned
  // tfg_simt_switch pops r15 r14 r13 r12 rbx rbp, then returns into
  // tfg_simt_fiber_start with rsp % 16 == 0, so that its call of
  // tfg_simt_fiber_main meets the ABI's alignment.
  uint64_t* sp = top - 9;
  sp[0] = sp[1] = sp[2] = sp[3] = 0;                   // r15 r14 r13 r12
  sp[4] = reinterpret_cast<uint64_t>(&f);              // rbx: the fiber
  sp[5] = 0;                                           // rbp: end of frame chain
  sp[6] = reinterpret_cast<uint64_t>(&tfg_simt_fiber_start);
  sp[7] = sp[8] = 0;
  f.sp = sp;
}

// Scheduler -> fiber f; returns when f blocks or finishes.
void resume(Fiber& f) {
  t_fiber = &f;
  detail::t_thread = &f.ts;
#ifdef TFG_SIMT_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
  tfg_simt_switch(&t_scheduler_sp, f.sp);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  tfg_simt_switch(&t_scheduler_sp, f.sp);
#endif
  t_fiber = nullptr;
  detail::t_thread = nullptr;
}

// Fiber f -> scheduler; returns when the scheduler resumes f.
void suspend(Fiber& f) {
#ifdef TFG_SIMT_ASAN
  __sanitizer_start_switch_fiber(&f.fake_stack, t_scheduler_stack, t_scheduler_stack_size);
  tfg_simt_switch(&f.sp, t_scheduler_sp);
  __sanitizer_finish_switch_fiber(f.fake_stack, &t_scheduler_stack, &t_scheduler_stack_size);
#else
  tfg_simt_switch(&f.sp, t_scheduler_sp);
#endif
}

Fiber& self(const Site& site) {
  if (t_fiber == nullptr)
    throw std::logic_error(std::string(site.what) + " called outside a kernel (" + site.file + ":" +
                           std::to_string(site.line) + ")");
  return *t_fiber;
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

const char* basename_of(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

bool same_site(const Site& a, const Site& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

std::string where(const Site& s) {
  return cat(s.what, " (", basename_of(s.file), ":", s.line, " in ", s.func, ")");
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// "0-15, 32, 40-47"
std::string ranges(const std::vector<int>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> lanes_of(unsigned mask) {
  std::vector<int> v;
  for (int l = 0; l < 32; ++l)
    if (mask & (1u << l)) v.push_back(l);
  return v;
}

std::string dim_text(dim3 d) { return cat("(", d.x, ", ", d.y, ", ", d.z, ")"); }

std::string kernel_text(const detail::Launch& l) {
  return cat("kernel ", demangle(l.kernel_type), " launched in ", l.site.func, " (",
             basename_of(l.site.file), ":", l.site.line, ")");
}

std::string block_text(const detail::Launch& l, uint3 b) {
  return cat(kernel_text(l), ", block ", dim_text(b), " of grid ", dim_text(l.grid), ", blockDim ",
             dim_text(l.block));
}

void release(Fiber& f, uint64_t result) {
  f.result = result;
  f.wait = Wait::None;
  f.state = State::Runnable;
}

}  // namespace

namespace detail {

[[noreturn]] void outside_kernel(const char* what) {
  throw std::logic_error(std::string(what) + " read outside a kernel");
}

int block_barrier(BarrierOp op, int pred, const Site& site) {
  Fiber& f = self(site);
  BlockRun& b = *t_block;
  f.wait = Wait::Barrier;
  f.site = site;
  f.op = static_cast<int>(op);
  f.pred = pred;
  f.mask = 0;
  f.state = State::Waiting;
  if (++b.arrived == b.n) {
    // Note [divergent barriers]: every thread must reach the same barrier;
    // threads waiting at different __syncthreads() calls are reported, even
    // though a GPU might let them pass each other.
    int count = 0;
    for (int i = 0; i < b.n; ++i) {
      const Fiber& g = *b.fibers[i];
      count += g.pred;
      if (!same_site(g.site, site) || g.op != f.op) {
        const Site& first = b.fibers[0]->site;
        std::vector<int> here, there;
        const Site* other = nullptr;
        bool several = false;
        for (int t = 0; t < b.n; ++t) {
          const Site& st = b.fibers[t]->site;
          if (same_site(st, first)) {
            here.push_back(t);
          } else {
            there.push_back(t);
            if (!other) other = &st;
            several = several || !same_site(st, *other);
          }
        }
        b.arrived = 0;
        throw SimtError(cat("divergent barrier: threads ", ranges(here), " wait at ", where(first),
                            ", threads ", ranges(there), " at ", where(*other),
                            several ? " and elsewhere" : "",
                            "; all threads of a block must reach the same barrier"));
      }
    }
    uint64_t result = 0;
    switch (op) {
      case BarrierOp::Sync: break;
      case BarrierOp::Count: result = static_cast<uint64_t>(count); break;
      case BarrierOp::And: result = count == b.n; break;
      case BarrierOp::Or: result = count > 0; break;
    }
    b.arrived = 0;
    for (int i = 0; i < b.n; ++i) release(*b.fibers[i], result);
  }
  suspend(f);  // also after completing it: the scheduler goes on in thread order
  return static_cast<int>(f.result);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const Site& site) {
  Fiber& f = self(site);
  BlockRun& b = *t_block;
  const int base = f.warp * 32, lanes = std::min(32, b.n - base);
  const unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  if (mask & ~existing)
    throw SimtError(cat(where(site), " with mask ", hex(mask), " names lanes ", ranges(lanes_of(mask & ~existing)),
                        " of warp ", f.warp, ", which do not exist (the block has ", b.n,
                        " threads); those threads never arrive"));
  if (!(mask & (1u << f.lane)))
    throw SimtError(cat(where(site), " called by lane ", f.lane, " of warp ", f.warp, " with mask ", hex(mask),
                        ", which does not include the calling lane"));
  const bool shuffle = op == WarpOp::ShflIdx || op == WarpOp::ShflUp || op == WarpOp::ShflDown ||
                       op == WarpOp::ShflXor;
  if (shuffle && (width < 1 || width > 32 || (width & (width - 1)) != 0))
    throw SimtError(cat(where(site), " with width ", width, ": the width must be a power of 2 from 1 to 32"));

  f.wait = Wait::Warp;
  f.site = site;
  f.op = static_cast<int>(op);
  f.mask = mask;
  f.value = value;
  f.arg = arg;
  f.width = width;
  f.state = State::Waiting;
  // Note [warp collectives]: a collective completes when every lane named in
  // its mask waits at a collective of the same kind with the same mask (and
  // width); the last lane to arrive computes everybody's result. A lane that
  // exited, or waits at anything else, leaves it waiting: a deadlock, which
  // the scheduler reports once no thread can run.
  for (int l = 0; l < 32; ++l) {
    if (!(mask & (1u << l))) continue;
    const Fiber& g = *b.fibers[base + l];
    if (g.state != State::Waiting || g.wait != Wait::Warp || g.op != f.op || g.mask != mask || g.width != width) {
      suspend(f);
      return f.result;
    }
  }
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask & (1u << l)) && b.fibers[base + l]->value) ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    if (!(mask & (1u << l))) continue;
    Fiber& g = *b.fibers[base + l];
    uint64_t result = 0;
    if (shuffle) {
      const int seg = l / width * width, pos = l - seg;
      int src = l;
      switch (op) {
        case WarpOp::ShflIdx: src = seg + (g.arg & (width - 1)); break;
        case WarpOp::ShflUp: src = pos - static_cast<int64_t>(static_cast<unsigned>(g.arg)) >= 0 ? l - g.arg : l; break;
        case WarpOp::ShflDown:
          src = pos + static_cast<int64_t>(static_cast<unsigned>(g.arg)) < width ? l + g.arg : l;
          break;
        default: {
          const int x = l ^ (g.arg & 31);
          src = x / width > l / width ? l : x;
        }
      }
      // Note [poisoned shuffles]: reading a lane outside the mask is undefined
      // in CUDA; it returns all one bits (NaN, or -1) here.
      result = (mask & (1u << src)) ? b.fibers[base + src]->value : ~uint64_t(0);
    } else if (op == WarpOp::Ballot) {
      result = ballot;
    } else if (op == WarpOp::Any) {
      result = ballot != 0;
    } else if (op == WarpOp::All) {
      result = ballot == mask;
    }
    release(g, result);
  }
  f.wait = Wait::None;
  return f.result;
}

void* dynamic_shared_memory(const Site& site) {
  self(site);
  return t_block->dynamic_shared;
}

}  // namespace detail

namespace {

// Why the block cannot go on: every fiber is waiting or done, some are waiting.
std::string deadlock_text(const BlockRun& b) {
  std::string out = "deadlock: no thread of the block can go on";
  std::vector<int> exited;
  std::vector<bool> told(b.n, false);
  for (int i = 0; i < b.n; ++i) {
    const Fiber& f = *b.fibers[i];
    if (f.state == State::Done) exited.push_back(i);
    if (f.state != State::Waiting || told[i]) continue;
    std::vector<int> group;
    for (int j = i; j < b.n; ++j) {
      const Fiber& g = *b.fibers[j];
      if (g.state == State::Waiting && !told[j] && g.wait == f.wait && same_site(g.site, f.site) && g.mask == f.mask && (f.wait == Wait::Barrier || g.warp == f.warp)) {
        group.push_back(j);
        told[j] = true;
      }
    }
    if (f.wait == Wait::Barrier) {
      out += cat("; threads ", ranges(group), " wait at ", where(f.site), " (", b.arrived, " of ", b.n,
                 " threads arrived)");
    } else {
      std::vector<int> lanes, missing;
      for (int t : group) lanes.push_back(t - f.warp * 32);
      for (int l : lanes_of(f.mask)) {
        const Fiber& g = *b.fibers[f.warp * 32 + l];
        if (!(g.state == State::Waiting && g.wait == Wait::Warp && g.op == f.op && g.mask == f.mask))
          missing.push_back(l);
      }
      out += cat("; warp ", f.warp, " lanes ", ranges(lanes), " wait at ", where(f.site), " with mask ",
                 hex(f.mask), ", lanes ", ranges(missing), " of that mask never arrive");
    }
  }
  if (!exited.empty()) out += cat("; threads ", ranges(exited), " have exited");
  return out;
}

// Note [abandoned blocks]: when a thread throws (or misuses an intrinsic),
// or the block deadlocks, the block is given up: the other fibers are never
// resumed (their stacks are simply reused by the next block; kernels keep
// only trivially destructible objects on them) and the error is rethrown on
// the OS thread's own stack. An exception never unwinds across a fiber
// boundary: tfg_simt_fiber_main catches everything.
void run_block(const detail::Launch& l, uint3 block_idx) {
  if (t_block != nullptr)
    throw std::runtime_error(cat("CUDA emulation: ", kernel_text(l),
                                 ": a launch from inside a kernel (dynamic parallelism) is not emulated"));
  const int n = static_cast<int>(l.block.x * l.block.y * l.block.z);
  t_pool.ensure(n);
  std::vector<Fiber*> fibers(n);
  for (int i = 0; i < n; ++i) {
    Fiber& f = *t_pool.fibers[i];
    f.ts.thread_idx = uint3{i % l.block.x, i / l.block.x % l.block.y, i / (l.block.x * l.block.y)};
    f.ts.block_idx = block_idx;
    f.ts.block_dim = l.block;
    f.ts.grid_dim = l.grid;
    f.linear = i;
    f.warp = i / 32;
    f.lane = i % 32;
    f.state = State::Runnable;
    f.wait = Wait::None;
    f.mask = 0;
    f.op = f.pred = f.arg = f.width = 0;
    f.value = f.result = 0;
    init_stack(f);
    fibers[i] = &f;
  }
  struct SharedMemory {
    void* p = nullptr;
    ~SharedMemory() { std::free(p); }
  } smem;
  if (l.dynamic_shared > 0) {
    if (posix_memalign(&smem.p, 128, l.dynamic_shared) != 0) throw std::bad_alloc();
    std::memset(smem.p, 0xff, l.dynamic_shared);  // Note [poisoned dynamic shared memory]
  }
  BlockRun b;
  b.launch = &l;
  b.fibers = fibers.data();
  b.n = n;
  b.dynamic_shared = smem.p;
  t_block = &b;
  bool ran = true;
  while (ran && !b.error) {
    ran = false;
    for (int i = 0; i < n && !b.error; ++i) {
      if (fibers[i]->state != State::Runnable) continue;
      resume(*fibers[i]);
      ran = true;
    }
  }
  t_block = nullptr;
  if (b.error) {
    const Fiber& f = *fibers[b.error_thread];
    const std::string thread = cat(", thread ", dim_text(f.ts.thread_idx), ": ");
    try {
      std::rethrow_exception(b.error);
    } catch (const SimtError& e) {
      throw std::runtime_error(cat("CUDA emulation: ", block_text(l, block_idx), thread, e.what()));
    }
  }
  for (int i = 0; i < n; ++i)
    if (fibers[i]->state != State::Done)
      throw std::runtime_error(cat("CUDA emulation: ", block_text(l, block_idx), ": ", deadlock_text(b)));
}

[[noreturn]] void refuse(const detail::Launch& l, cudaError_t err, const std::string& why) {
  throw std::runtime_error(cat("CUDA error: ", cuda::error_text(err), " launching ", kernel_text(l), ": ", why));
}

void validate(const detail::Launch& l) {
  const dim3 g = l.grid, bl = l.block;
  if (bl.x == 0 || bl.y == 0 || bl.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    refuse(l, cudaErrorInvalidConfiguration, cat("grid ", dim_text(g), " and block ", dim_text(bl),
                                                 " must not have a zero dimension"));
  if (uint64_t(bl.x) * bl.y * bl.z > 1024)
    refuse(l, cudaErrorInvalidConfiguration,
           cat("block ", dim_text(bl), " has ", uint64_t(bl.x) * bl.y * bl.z, " threads, more than 1024"));
  if (bl.x > 1024 || bl.y > 1024 || bl.z > 64)
    refuse(l, cudaErrorInvalidConfiguration,
           cat("block ", dim_text(bl), " exceeds the block dimensions (1024, 1024, 64)"));
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    refuse(l, cudaErrorInvalidConfiguration,
           cat("grid ", dim_text(g), " exceeds the grid dimensions (2147483647, 65535, 65535)"));
  const int limit = max_dynamic_shared_bytes(l.kernel);
  if (l.dynamic_shared > static_cast<size_t>(limit))
    refuse(l, cudaErrorInvalidValue,
           cat(l.dynamic_shared, " bytes of dynamic shared memory, more than the kernel's limit of ", limit,
               " (raise it with cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))"));
  if (!stream_is_valid(l.stream))
    refuse(l, cudaErrorInvalidResourceHandle, "the stream is not a live stream");
}

}  // namespace

namespace detail {

void run_grid(const Launch& l) {
  validate(l);
  const int64_t blocks = int64_t(l.grid.x) * l.grid.y * l.grid.z;
  std::mutex mu;
  int64_t failed_block = blocks;
  std::exception_ptr error;
  std::atomic<bool> stop{false};
  parallel_for(blocks, [&](int64_t i) {
    if (stop.load(std::memory_order_relaxed)) return;
    const uint3 idx{static_cast<unsigned>(i % l.grid.x), static_cast<unsigned>(i / l.grid.x % l.grid.y),
                    static_cast<unsigned>(i / (int64_t(l.grid.x) * l.grid.y))};
    try {
      run_block(l, idx);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (i < failed_block) {
        failed_block = i;
        error = std::current_exception();
      }
      stop = true;
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

}  // namespace tfg::simt

extern "C" __attribute__((visibility("hidden"), noreturn)) void tfg_simt_fiber_main(void* fiber);

// Entered from tfg_simt_fiber_start on a fresh stack; runs one CUDA thread.
extern "C" void tfg_simt_fiber_main(void* fiber) {
  using namespace tfg::simt;
  Fiber* f = static_cast<Fiber*>(fiber);
#ifdef TFG_SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &t_scheduler_stack, &t_scheduler_stack_size);
#endif
  BlockRun& b = *t_block;
  try {
    b.launch->entry(b.launch->params);
  } catch (...) {
    if (!b.error) {
      b.error = std::current_exception();
      b.error_thread = f->linear;
    }
  }
  f->state = State::Done;
  f->wait = Wait::None;
#ifdef TFG_SIMT_ASAN
  __sanitizer_start_switch_fiber(nullptr, t_scheduler_stack, t_scheduler_stack_size);
#endif
  tfg_simt_switch(&f->sp, t_scheduler_sp);
  __builtin_unreachable();
}
