// Cosine-similarity matrix s[M, N] = âᵢ·b̂ⱼ of the rows of a[M, D] and b[N, D] (kNN evaluation: a test
// batch against the feature bank). One fused launch: each block computes a 64×64 tile of raw dot
// products with row_tile_dots, which also yields the rows' sums of squares as the k axis streams by, so
// normalization needs neither a separate pass nor scratch. Norms are clamped below by eps, as in the
// CPU twin: s = (aᵢ·bⱼ) / (max(‖aᵢ‖, eps)·max(‖bⱼ‖, eps)).
#include "common.cuh"

// grid = (ceil(N/64), ceil(M/64)): x runs over the (large) bank dimension.
extern "C" __global__ void __launch_bounds__(ROWTILE_THREADS) cosine_similarity(float* __restrict__ s,
    const float* __restrict__ a, const float* __restrict__ b, int m, int n, int dim, float eps)
{
    __shared__ __align__(16) RowTileSmem sm;
    __shared__ float sqA[ROWTILE], sqB[ROWTILE];

    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const int rowBase = blockIdx.y * ROWTILE, colBase = blockIdx.x * ROWTILE;

    float acc[4][4];
    row_tile_dots<true>(acc, sm, a, m, rowBase, b, n, colBase, dim, sqA, sqB);
    __syncthreads();

    float invB[4];
#pragma unroll
    for (int c = 0; c < 4; c++) invB[c] = 1.0f / fmaxf(sqrtf(sqB[tx * 4 + c]), eps);

#pragma unroll
    for (int r = 0; r < 4; r++)
    {
        const int row = rowBase + ty * 4 + r;
        if (row >= m) continue;
        const float invA = 1.0f / fmaxf(sqrtf(sqA[ty * 4 + r]), eps);
        float* dst = s + (i64)row * n;
#pragma unroll
        for (int c = 0; c < 4; c++)
        {
            const int col = colBase + tx * 4 + c;
            if (col < n) dst[col] = acc[r][c] * invA * invB[c];
        }
    }
}
