// Host emulation of the CUDA subset that kernels/*.cu use, so that the kernels' index math, tiling,
// barriers and reductions actually execute (and are checked against double references) on machines
// without a GPU. Blocks run one after another; each CUDA thread of a block is a cooperative fiber that
// runs until it reaches a barrier, so __syncthreads really separates phases (a missing one shows up as a
// wrong result: the fibers before it have run ahead). Warp shuffles exchange through a per-warp buffer
// between two warp barriers, which requires converged warps, as the kernels do. __shared__ becomes a
// function-local static: correct because blocks never run concurrently.
// Not emulated: memory-model subtleties (L1 incoherence), timing, occupancy, real float ordering of a
// GPU's FMA contraction; those need the CPU-vs-CUDA tests on a device.
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>
#include <array>
#include <vector>
#include <functional>
#include <ucontext.h>
#include <cstdlib>
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) float4 { float x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
#include <math.h>
// ---- cooperative threads ----------------------------------------------------------------------
// Each CUDA thread of a block is a fiber (ucontext) on one OS thread; a fiber runs until it waits at a
// barrier or returns, then the next one runs, round robin. A barrier releases when its last
// participant arrives, exactly like __syncthreads (block) and a converged warp's shuffle (32 lanes).
struct Fiber
{
    ucontext_t context;
    std::vector<unsigned char> stack;
    bool finished = false;
    dim3 thread;
};

dim3 threadIdx, blockIdx, blockDim, gridDim;
static ucontext_t g_scheduler;
static std::vector<Fiber>* g_fibers;
static int g_current;

static void yield_to_scheduler()
{
    swapcontext(&(*g_fibers)[g_current].context, &g_scheduler);
    threadIdx = (*g_fibers)[g_current].thread; // the scheduler ran other fibers in between
}

struct Barrier
{
    int expected = 0, arrived = 0;
    unsigned generation = 0;
    void wait()
    {
        const unsigned mine = generation;
        if (++arrived == expected)
        {
            arrived = 0;
            generation++;
            return;
        }
        while (generation == mine) yield_to_scheduler();
    }
};

static Barrier g_block_barrier;
static std::vector<Barrier> g_warp_barriers;
static std::vector<std::array<unsigned char, 8>> g_lane_slots;

inline void __syncthreads() { g_block_barrier.wait(); }
inline void __threadfence() {}

template <class T>
T __shfl_xor_sync(unsigned, T v, int offset)
{
    static_assert(sizeof(T) <= 8);
    const int t = (int)threadIdx.x, warp = t / 32;
    memcpy(g_lane_slots[t].data(), &v, sizeof(T));
    g_warp_barriers[warp].wait();
    T r;
    memcpy(&r, g_lane_slots[warp * 32 + ((t % 32) ^ offset)].data(), sizeof(T));
    g_warp_barriers[warp].wait();
    return r;
}

inline unsigned atomicAdd(unsigned* p, unsigned v)
{
    unsigned old = *p;
    *p = old + v;
    return old;
}

static std::function<void()> g_block_body;

// Fibers run in increasing thread order, or decreasing with SIMCLR_EMU_REVERSE=1. A missing barrier lets a
// thread read shared memory before another thread of the same block has written it; which threads then
// see stale data depends on the order, so the drivers run once in each order.
static const bool g_reverse_order = [] {
    const char* v = getenv("SIMCLR_EMU_REVERSE");
    return v != nullptr && v[0] == '1';
}();

static void fiber_entry()
{
    threadIdx = (*g_fibers)[g_current].thread;
    g_block_body();
    (*g_fibers)[g_current].finished = true;
}

// Runs kernel k over grid × block (1-d blocks, a multiple of 32 threads), one block after another.
template <class... A, class... B>
void launch(void (*k)(A...), dim3 grid, dim3 block, B... args)
{
    gridDim = grid;
    blockDim = block;
    const int n = (int)block.x;
    g_block_body = [&] { k(args...); };
    g_warp_barriers.assign((n + 31) / 32, Barrier{});
    for (auto& w : g_warp_barriers) w.expected = 32;
    g_lane_slots.assign(n, {});
    std::vector<Fiber> fibers(n);
    g_fibers = &fibers;
    for (unsigned by = 0; by < grid.y; by++)
        for (unsigned bx = 0; bx < grid.x; bx++)
        {
            blockIdx = {bx, by, 0};
            g_block_barrier = Barrier{};
            g_block_barrier.expected = n;
            for (int t = 0; t < n; t++)
            {
                Fiber& f = fibers[t];
                f.finished = false;
                f.thread = {(unsigned)t, 0, 0};
                f.stack.resize(1 << 16);
                getcontext(&f.context);
                f.context.uc_stack.ss_sp = f.stack.data();
                f.context.uc_stack.ss_size = f.stack.size();
                f.context.uc_link = &g_scheduler;
                makecontext(&f.context, fiber_entry, 0);
            }
            for (int live = n; live > 0;)
            {
                live = 0;
                for (int i = 0; i < n; i++)
                {
                    g_current = g_reverse_order ? n - 1 - i : i;
                    if (fibers[g_current].finished) continue;
                    swapcontext(&g_scheduler, &fibers[g_current].context);
                    if (!fibers[g_current].finished) live++;
                }
            }
        }
}

// ---- checking helpers shared by the *_emu.cpp drivers --------------------------------------------
#include <cstdio>
#include <algorithm>
#include <random>

static int g_failures = 0;

// Max absolute difference relative to the reference's largest magnitude, floored at `floor` so that
// an all-zero reference is compared against the size of the terms that cancel to produce it.
[[maybe_unused]] static double max_rel_error(const float* got, const double* want, size_t n, double floor = 1e-3)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++) scale = std::max(scale, std::fabs(want[i]));
    scale = std::max(scale, floor);
    for (size_t i = 0; i < n; i++)
    {
        double e = std::fabs(got[i] - want[i]) / scale;
        if (!(e <= worst)) worst = e; // NaN propagates as a failure
    }
    return worst;
}

static void report(const char* what, double err, double tolerance = 1e-5)
{
    bool ok = err <= tolerance;
    printf("%-48s %.2e %s\n", what, err, ok ? "ok" : "FAILED");
    if (!ok) g_failures++;
}

static int finish()
{
    printf("thread order: %s\n", g_reverse_order ? "decreasing" : "increasing");
    printf(g_failures ? "%d FAILED\n" : "ALL OK\n", g_failures);
    return g_failures ? 1 : 0;
}
