// Shared device helpers for every kernels/*.cu: fixed-width integer names, 64-bit grid-stride
// indexing, warp and block reductions (sum, max), the online log-sum-exp combine used by the fused
// NT-Xent kernels, and Philox4x32-10 bit-identical to src/Kernels/Philox.cs. NVRTC-compatible: no host
// or standard headers (NVRTC provides the vector types uint2/uint4/float4 and the intrinsics built in).
#pragma once

typedef unsigned int u32;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;

#define SIMCLR_FULL_MASK 0xffffffffu
#define SIMCLR_WARP 32

// NVRTC has no <math.h>, hence no INFINITY: build the IEEE bit patterns directly.
#define SIMCLR_INF_F __int_as_float(0x7f800000)
#define SIMCLR_NEG_INF_F __int_as_float((int)0xff800000u)

// ---- indexing ----------------------------------------------------------------------------------

// Global thread index and grid stride in 64 bits: sizes of parameter buffers and activations can
// exceed 2^31 elements once multiplied out, and blockIdx.x * blockDim.x overflows 32 bits first.
__device__ __forceinline__ i64 global_thread_index()
{
    return (i64)blockIdx.x * (i64)blockDim.x + (i64)threadIdx.x;
}

__device__ __forceinline__ i64 grid_stride()
{
    return (i64)gridDim.x * (i64)blockDim.x;
}

__device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }

// True when a pointer is 16-byte aligned, i.e. usable through float4 loads and stores.
__device__ __forceinline__ bool is_aligned16(const void* p) { return ((u64)p & 15ull) == 0; }

// ---- warp and block reductions -----------------------------------------------------------------

// Butterfly reductions: every lane ends with the full result, in a fixed order (deterministic).
template <typename T>
__device__ __forceinline__ T warp_reduce_sum(T v)
{
#pragma unroll
    for (int offset = SIMCLR_WARP / 2; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(SIMCLR_FULL_MASK, v, offset);
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_reduce_max(T v)
{
#pragma unroll
    for (int offset = SIMCLR_WARP / 2; offset > 0; offset >>= 1)
    {
        T o = __shfl_xor_sync(SIMCLR_FULL_MASK, v, offset);
        v = o > v ? o : v;
    }
    return v;
}

// Block-wide sum; every thread of the block must call it and every thread gets the result.
// `scratch` is shared memory of at least 32 elements. blockDim.x must be a multiple of 32 and the
// block one-dimensional. The function synchronizes before returning, so the same scratch may be
// reused by the next call.
template <typename T>
__device__ __forceinline__ T block_reduce_sum(T v, T* scratch)
{
    const int lane = threadIdx.x & (SIMCLR_WARP - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    v = warp_reduce_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T r = lane < warps ? scratch[lane] : (T)0;
    r = warp_reduce_sum(r);
    __syncthreads();
    return r;
}

// Block-wide maximum, same contract as block_reduce_sum; `lowest` is the identity (e.g. SIMCLR_NEG_INF_F).
template <typename T>
__device__ __forceinline__ T block_reduce_max(T v, T* scratch, T lowest)
{
    const int lane = threadIdx.x & (SIMCLR_WARP - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    v = warp_reduce_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T r = lane < warps ? scratch[lane] : lowest;
    r = warp_reduce_max(r);
    __syncthreads();
    return r;
}

// ---- online log-sum-exp ------------------------------------------------------------------------

// A running log-sum-exp as (max, sum of exp(x - max)): lse = max + log(sum). The empty state is
// (-inf, 0). Streaming rows through this keeps the similarity matrix off memory entirely.
struct LseState
{
    float max;
    float sum;
};

__device__ __forceinline__ LseState lse_empty()
{
    LseState s;
    s.max = SIMCLR_NEG_INF_F;
    s.sum = 0.0f;
    return s;
}

// Adds one value x to the state.
__device__ __forceinline__ LseState lse_push(LseState s, float x)
{
    if (x <= s.max)
    {
        s.sum += expf(x - s.max);
    }
    else
    {
        // New maximum: rescale what was summed so far (exp(-inf) = 0 handles the empty state).
        s.sum = s.sum * expf(s.max - x) + 1.0f;
        s.max = x;
    }
    return s;
}

// Merges two partial states; either may be empty.
__device__ __forceinline__ LseState lse_combine(LseState a, LseState b)
{
    if (a.max == SIMCLR_NEG_INF_F) return b;
    if (b.max == SIMCLR_NEG_INF_F) return a;
    LseState r;
    r.max = fmaxf(a.max, b.max);
    r.sum = a.sum * expf(a.max - r.max) + b.sum * expf(b.max - r.max);
    return r;
}

__device__ __forceinline__ float lse_value(LseState s)
{
    return s.max + logf(s.sum);
}

// Combines the states of a warp's lanes; every lane gets the total.
__device__ __forceinline__ LseState warp_lse_combine(LseState s)
{
#pragma unroll
    for (int offset = SIMCLR_WARP / 2; offset > 0; offset >>= 1)
    {
        LseState o;
        o.max = __shfl_xor_sync(SIMCLR_FULL_MASK, s.max, offset);
        o.sum = __shfl_xor_sync(SIMCLR_FULL_MASK, s.sum, offset);
        s = lse_combine(s, o);
    }
    return s;
}

// ---- Philox4x32-10 -----------------------------------------------------------------------------

#define SIMCLR_PHILOX_M0 0xD2511F53u
#define SIMCLR_PHILOX_M1 0xCD9E8D57u
#define SIMCLR_PHILOX_W0 0x9E3779B9u
#define SIMCLR_PHILOX_W1 0xBB67AE85u

// One Philox4x32-10 block of counter `ctr` under key `key` (key = low word, high word of the 64-bit
// seed). Identical to Philox.Block in src/Kernels/Philox.cs: per round
//   hi0:lo0 = M0·c0, hi1:lo1 = M1·c2, c = (hi1^c1^k0, lo1, hi0^c3^k1, lo0),
// with the key bumped by (W0, W1) between rounds.
__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key)
{
    u32 c0 = ctr.x, c1 = ctr.y, c2 = ctr.z, c3 = ctr.w;
    u32 k0 = key.x, k1 = key.y;
#pragma unroll
    for (int round = 0; round < 10; round++)
    {
        if (round > 0)
        {
            k0 += SIMCLR_PHILOX_W0;
            k1 += SIMCLR_PHILOX_W1;
        }
        const u32 hi0 = __umulhi(SIMCLR_PHILOX_M0, c0), lo0 = SIMCLR_PHILOX_M0 * c0;
        const u32 hi1 = __umulhi(SIMCLR_PHILOX_M1, c2), lo1 = SIMCLR_PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    return make_uint4(c0, c1, c2, c3);
}

// The key of a 64-bit seed, as Philox.Block(ulong seed, ...) builds it.
__device__ __forceinline__ uint2 philox_key(u64 seed)
{
    return make_uint2((u32)seed, (u32)(seed >> 32));
}

// Uniform in [0, 1) from the top 24 bits: exact in float, equal to Philox.ToUniformFloat.
__device__ __forceinline__ float philox_uniform(unsigned int x)
{
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}
