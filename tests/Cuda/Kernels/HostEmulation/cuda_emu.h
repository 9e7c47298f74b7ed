// Host emulation of the CUDA subset that kernels/*.cu use, so that the kernels' index math, tiling,
// barriers and reductions actually execute (and are checked against double references) on machines
// without a GPU. Blocks run one after another; each CUDA thread of a block is a std::thread, so
// __syncthreads is a real barrier and a missing one shows up as a wrong result. Warp shuffles exchange
// through a per-warp buffer between two warp barriers, which requires converged warps, as the kernels
// do. __shared__ becomes a function-local static: correct because blocks never run concurrently.
// Not emulated: memory-model subtleties (L1 incoherence), timing, occupancy, real float ordering of a
// GPU's FMA contraction; those need the CPU-vs-CUDA tests on a device.
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>
#include <thread>
#include <barrier>
#include <vector>
#include <atomic>
#include <memory>
#include <functional>
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
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
struct WarpX { std::barrier<> bar{32}; alignas(8) unsigned char slot[32][8]; };
std::barrier<>* g_block_bar;
std::vector<std::unique_ptr<WarpX>> g_warps;
inline void __syncthreads() { g_block_bar->arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <class T> T __shfl_xor_sync(unsigned, T v, int off)
{
    static_assert(sizeof(T) <= 8);
    WarpX& w = *g_warps[threadIdx.x / 32];
    int lane = threadIdx.x % 32;
    memcpy(w.slot[lane], &v, sizeof(T));
    w.bar.arrive_and_wait();
    T r; memcpy(&r, w.slot[lane ^ off], sizeof(T));
    w.bar.arrive_and_wait();
    return r;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
// Runs kernel k over grid x block. One std::thread per CUDA thread, reused across the grid's blocks:
// the threads meet at a start barrier, run one block, and meet again at an end barrier.
template <class... A, class... B>
void launch(void (*k)(A...), dim3 grid, dim3 block, B... args)
{
    gridDim = grid;
    blockDim = block;
    const int n = (int)(block.x * block.y * block.z);
    std::barrier<> blockBar(n), start(n + 1), end(n + 1);
    g_block_bar = &blockBar;
    g_warps.clear();
    for (int w = 0; w < (n + 31) / 32; w++) g_warps.emplace_back(new WarpX());
    dim3 current;
    bool done = false;
    std::vector<std::thread> threads;
    for (int t = 0; t < n; t++)
        threads.emplace_back([&, t] {
            threadIdx = {(unsigned)t, 0, 0};
            for (;;)
            {
                start.arrive_and_wait();
                if (done) return;
                blockIdx = current;
                k(args...);
                end.arrive_and_wait();
            }
        });
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++)
            {
                current = {bx, by, bz};
                start.arrive_and_wait();
                end.arrive_and_wait();
            }
    done = true;
    start.arrive_and_wait();
    for (auto& t : threads) t.join();
}

// ---- checking helpers shared by the *_emu.cpp drivers --------------------------------------------
#include <cstdio>
#include <algorithm>
#include <random>

static int g_failures = 0;

// Max absolute difference relative to the reference's largest magnitude, floored at `floor` so that
// an all-zero reference is compared against the size of the terms that cancel to produce it.
static double max_rel_error(const float* got, const double* want, size_t n, double floor = 1e-3)
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
    printf(g_failures ? "%d FAILED\n" : "ALL OK\n", g_failures);
    return g_failures ? 1 : 0;
}
