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

// Strided loop over [0, n): vec4(q) for every whole float4 q (elements 4q..4q+3) when `aligned`, then
// scalar(i) for the rest. start/stride are this thread's first index and the total thread count.
// `aligned` must be uniform across the launch (it is derived from the base pointers).
template <typename Vec4Op, typename ScalarOp>
__device__ __forceinline__ void strided_for_each4(i64 n, bool aligned, i64 start, i64 stride, Vec4Op vec4, ScalarOp scalar)
{
    i64 done = 0;
    if (aligned)
    {
        const i64 quads = n >> 2;
        for (i64 q = start; q < quads; q += stride) vec4(q);
        done = quads << 2;
    }
    for (i64 i = done + start; i < n; i += stride) scalar(i);
}

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

// Combines the states of groups of `Width` consecutive lanes (Width a power of two ≤ 32); every lane
// of a group gets its group's total. Width 32 combines the whole warp.
template <int Width>
__device__ __forceinline__ LseState warp_lse_combine(LseState s)
{
#pragma unroll
    for (int offset = Width / 2; offset > 0; offset >>= 1)
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

// ---- row-dot tiles -----------------------------------------------------------------------------

// acc[r][c] = Σ_k A[rowBase + ty·4 + r][k] · B[colBase + tx·4 + c][k] for a 64×64 tile of dot products
// between rows of two row-major matrices A[rowsA, d] and B[rowsB, d] (ty = tid / 16, tx = tid % 16,
// 256 threads). This is the on-chip core of the similarity kernels (NT-Xent, cosine): the k axis is
// streamed through shared memory in chunks of 16, stored transposed so that each thread reads its
// four rows and four columns as one float4 each (2 shared loads per 16 FMAs), and the next chunk is
// prefetched into registers while the current one is multiplied. Rows past rowsA/rowsB and k past d
// read as zero, so partial tiles and any d work. When sqA/sqB are given (shared, 64 floats each), the
// sums of squares of the tile's 64 A rows and 64 B rows are written there as a by-product.
#define ROWTILE 64
#define ROWTILE_K 16
#define ROWTILE_THREADS 256
// Padding keeps each transposed row 16-byte aligned for float4 reads while spreading the
// transposing stores over the banks (2-way conflicts instead of 16-way).
#define ROWTILE_PAD 4

struct RowTileSmem
{
    float a[ROWTILE_K][ROWTILE + ROWTILE_PAD];
    float b[ROWTILE_K][ROWTILE + ROWTILE_PAD];
};

template <bool kSumSquares>
__device__ __forceinline__ void row_tile_dots(float acc[4][4], RowTileSmem& sm,
    const float* __restrict__ A, int rowsA, int rowBase,
    const float* __restrict__ B, int rowsB, int colBase, int d,
    float* sqA, float* sqB)
{
    const int tid = threadIdx.x;
    const int ty = tid >> 4, tx = tid & 15;
    // Load mapping: thread loads k = tid % 16 of rows tid / 16 + 16·i (i = 0..3), for A and for B.
    const int lk = tid & 15, lr = tid >> 4;
    float ra[4], rb[4];
    float sq = 0.0f;

#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < 4; c++) acc[r][c] = 0.0f;

#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        const int ar = rowBase + lr + 16 * i, br = colBase + lr + 16 * i;
        ra[i] = (ar < rowsA && lk < d) ? A[(i64)ar * d + lk] : 0.0f;
        rb[i] = (br < rowsB && lk < d) ? B[(i64)br * d + lk] : 0.0f;
    }

    for (int k0 = 0; k0 < d; k0 += ROWTILE_K)
    {
        __syncthreads(); // the previous chunk (or the caller's previous use of sm) is finished
#pragma unroll
        for (int i = 0; i < 4; i++)
        {
            sm.a[lk][lr + 16 * i] = ra[i];
            sm.b[lk][lr + 16 * i] = rb[i];
        }
        __syncthreads();

        const int kn = k0 + ROWTILE_K + lk;
        if (k0 + ROWTILE_K < d)
        {
#pragma unroll
            for (int i = 0; i < 4; i++)
            {
                const int ar = rowBase + lr + 16 * i, br = colBase + lr + 16 * i;
                ra[i] = (ar < rowsA && kn < d) ? A[(i64)ar * d + kn] : 0.0f;
                rb[i] = (br < rowsB && kn < d) ? B[(i64)br * d + kn] : 0.0f;
            }
        }

        if (kSumSquares && tid < 2 * ROWTILE)
        {
            const float* col = tid < ROWTILE ? &sm.a[0][tid] : &sm.b[0][tid - ROWTILE];
#pragma unroll
            for (int kk = 0; kk < ROWTILE_K; kk++)
            {
                const float v = col[kk * (ROWTILE + ROWTILE_PAD)];
                sq = fmaf(v, v, sq);
            }
        }

#pragma unroll
        for (int kk = 0; kk < ROWTILE_K; kk++)
        {
            const float4 av = *reinterpret_cast<const float4*>(&sm.a[kk][ty * 4]);
            const float4 bv = *reinterpret_cast<const float4*>(&sm.b[kk][tx * 4]);
            const float a4[4] = {av.x, av.y, av.z, av.w};
            const float b4[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int c = 0; c < 4; c++) acc[r][c] = fmaf(a4[r], b4[c], acc[r][c]);
        }
    }

    if (kSumSquares)
    {
        if (tid < ROWTILE) sqA[tid] = sq;
        else if (tid < 2 * ROWTILE) sqB[tid - ROWTILE] = sq;
    }
}
