// Fused NT-Xent (SimCLR's normalized temperature-scaled cross-entropy) from raw z[R, D], R = 2N, the
// positive of row i being (i + N) mod R. The R×R similarity matrix never touches memory: 64×64 tiles of
// z·zᵀ are built on chip (row_tile_dots), scaled by the inverse norms and 1/τ, and folded into an online
// log-sum-exp per row (forward) or into dẑ (backward, which recomputes the tiles). Memory is O(R·D).
//
// Rows-subset mode (data parallelism, NtXentShape): z is the all-gathered [R, D] of every rank, the rows form
// blocks of 2P rows [view 0 of P samples; view 1 of the same P] and the positive of row i is i ± P inside its
// block (one block with P = N is the single-process layout). A launch computes only rows [r0, r0 + n) against
// all R columns: rowLse of those rows (indexed globally), their share Σ_own terms / R of the mean loss, and dz of
// those rows (dz and the split states indexed by the local row i − r0). The backward reads rowLse of every row
// (P(j, k) needs row j's), which the launcher's caller has all-gathered. r0 = 0, n = R, P = R/2 is the full op.
//
// Forward, four launches:
//   ntxent_row_norms   norms[i] = ‖zᵢ‖                                  (one warp per row)
//   ntxent_fwd_tiles   per (64-row block of the subset, column split): partial (max, Σexp) per row over the
//                      split's column tiles, j ≠ i                         → state[split][local row][2]
//   ntxent_fwd_rows    combines the splits in order, rowLse[i], the positive logit, and a per-block sum
//                      of the terms lseᵢ − s(i,pos)                        → blockTerms[block]
//   ntxent_loss_reduce loss = Σ blockTerms / R in a fixed order (deterministic, no float atomics)
// Backward, two launches, dz holding dẑ in between:
//   ntxent_bwd_tiles   dẑ_k = c·Σ_{j≠k} (exp(s_kj − lse_k) + exp(s_kj − lse_j))·ẑ_j,  c = lossGrad/(R·τ),
//                      per (64-row block, 128-wide slice of D); each block owns its rows, no atomics
//   ntxent_bwd_rows    adds the positive term −2c·ẑ_pos(k), then back through the normalization:
//                      dz = (dẑ − ẑ(ẑ·dẑ))/‖z‖ (dẑ/eps where ‖z‖ ≤ eps, where ẑ = z/eps is linear)
#include "common.cuh"

#define NTX_DSLICE 128
#define NTX_JSTEP 16

__device__ __forceinline__ float ntx_inv_norm(float n, float eps) { return 1.0f / fmaxf(n, eps); }

// The other view of row's sample: rows come in blocks of 2·pairs, [view 0; view 1] of the same samples.
__device__ __forceinline__ int ntx_positive(int row, int pairs) { return row % (2 * pairs) < pairs ? row + pairs : row - pairs; }

extern "C" __global__ void __launch_bounds__(256) ntxent_row_norms(float* __restrict__ norms, const float* __restrict__ z, int rows, int dim)
{
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    for (int row = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); row < rows; row += gridDim.x * warpsPerBlock)
    {
        const float* zr = z + (i64)row * dim;
        float sq = 0.0f;
        for (int k = lane; k < dim; k += 32) sq = fmaf(zr[k], zr[k], sq);
        sq = warp_reduce_sum(sq);
        if (lane == 0) norms[row] = sqrtf(sq);
    }
}

// grid = (ceil(n/64), splits); split y covers column tiles [y·tilesPerSplit, (y+1)·tilesPerSplit).
extern "C" __global__ void __launch_bounds__(ROWTILE_THREADS) ntxent_fwd_tiles(float* __restrict__ state,
    const float* __restrict__ z, const float* __restrict__ norms, int rows, int dim, float invTau, float eps, int tilesPerSplit,
    int rowStart, int rowCount)
{
    __shared__ __align__(16) RowTileSmem sm;
    __shared__ float invRow[ROWTILE], invCol[ROWTILE];

    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const int rowEnd = rowStart + rowCount;
    const int rowBase = rowStart + blockIdx.x * ROWTILE;
    const int colTiles = ceil_div(rows, ROWTILE);
    const int t0 = blockIdx.y * tilesPerSplit;
    const int t1 = min(t0 + tilesPerSplit, colTiles);

    if (tid < ROWTILE)
    {
        const int row = rowBase + tid;
        // 1/τ is folded into the row factor: s = (zᵢ·zⱼ)·(1/(τ‖zᵢ‖))·(1/‖zⱼ‖).
        invRow[tid] = row < rowEnd ? ntx_inv_norm(norms[row], eps) * invTau : 0.0f;
    }

    LseState st[4];
#pragma unroll
    for (int r = 0; r < 4; r++) st[r] = lse_empty();

    float acc[4][4];
    for (int t = t0; t < t1; t++)
    {
        const int colBase = t * ROWTILE;
        __syncthreads(); // the previous tile's epilogue has finished reading invCol
        if (tid < ROWTILE)
        {
            const int col = colBase + tid;
            invCol[tid] = col < rows ? ntx_inv_norm(norms[col], eps) : 0.0f;
        }
        row_tile_dots<false>(acc, sm, z, rowEnd, rowBase, z, rows, colBase, dim, nullptr, nullptr);
        // row_tile_dots synchronized after the invCol stores, so they are visible here.
#pragma unroll
        for (int r = 0; r < 4; r++)
        {
            const int row = rowBase + ty * 4 + r;
            const float ir = invRow[ty * 4 + r];
#pragma unroll
            for (int c = 0; c < 4; c++)
            {
                const int col = colBase + tx * 4 + c;
                if (col < rows && col != row) st[r] = lse_push(st[r], acc[r][c] * ir * invCol[tx * 4 + c]);
            }
        }
    }

    // The 16 threads of a row group are 16 consecutive lanes (lane = (ty & 1)·16 + tx).
#pragma unroll
    for (int r = 0; r < 4; r++)
    {
        const LseState s = warp_lse_combine<16>(st[r]);
        const int row = rowBase + ty * 4 + r;
        if (tx == 0 && row < rowEnd)
        {
            float* out = state + ((i64)blockIdx.y * rowCount + (row - rowStart)) * 2;
            out[0] = s.max;
            out[1] = s.sum;
        }
    }
}

// One warp per row of the subset, grid-stride over them with a grid fixed by the launcher, so the per-block
// sums (and hence the loss) do not depend on scheduling.
extern "C" __global__ void __launch_bounds__(256) ntxent_fwd_rows(float* __restrict__ rowLse, float* __restrict__ blockTerms,
    const float* __restrict__ state, const float* __restrict__ z, const float* __restrict__ norms,
    int dim, float invTau, float eps, int splits, int rowStart, int rowCount, int pairs)
{
    __shared__ double warpTerms[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warpsPerBlock = blockDim.x >> 5;
    double terms = 0.0;
    for (int local = blockIdx.x * warpsPerBlock + warp; local < rowCount; local += gridDim.x * warpsPerBlock)
    {
        const int row = rowStart + local;
        const int pos = ntx_positive(row, pairs);
        const float* zi = z + (i64)row * dim;
        const float* zp = z + (i64)pos * dim;
        float dot = 0.0f;
        for (int k = lane; k < dim; k += 32) dot = fmaf(zi[k], zp[k], dot);
        dot = warp_reduce_sum(dot);
        if (lane == 0)
        {
            LseState s = lse_empty();
            for (int sp = 0; sp < splits; sp++)
            {
                const float* in = state + ((i64)sp * rowCount + local) * 2;
                LseState p;
                p.max = in[0];
                p.sum = in[1];
                s = lse_combine(s, p);
            }
            const float lse = lse_value(s);
            const float positive = dot * ntx_inv_norm(norms[row], eps) * ntx_inv_norm(norms[pos], eps) * invTau;
            rowLse[row] = lse;
            terms += (double)lse - (double)positive;
        }
    }
    if (lane == 0) warpTerms[warp] = terms;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        double sum = 0.0;
        for (int w = 0; w < warpsPerBlock; w++) sum += warpTerms[w];
        blockTerms[blockIdx.x] = (float)sum;
    }
}

// One block: loss[0] = scale · Σ partials, summed in a fixed order.
extern "C" __global__ void __launch_bounds__(256) ntxent_loss_reduce(float* __restrict__ loss, const float* __restrict__ partials, int count, float scale)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_reduce_sum(sum, scratch);
    if (threadIdx.x == 0) loss[0] = (float)(sum * (double)scale);
}

// grid = (ceil(n/64), ceil(D/128)). Thread (ty, tx) accumulates rows ty·4 + r of the block and the
// slice columns tx·4 + c and 64 + tx·4 + c (so that a warp's float4 reads of ẑ are contiguous).
// Two blocks per SM (≤ 128 registers per thread) keep 16 warps resident to hide the global loads of ẑ.
extern "C" __global__ void __launch_bounds__(ROWTILE_THREADS, 2) ntxent_bwd_tiles(float* __restrict__ dzhat,
    const float* __restrict__ z, const float* __restrict__ rowLse, const float* __restrict__ norms,
    int rows, int dim, float invTau, float eps, float coef, int rowStart, int rowCount)
{
    __shared__ __align__(16) RowTileSmem sm;
    __shared__ __align__(16) float w[ROWTILE][ROWTILE + ROWTILE_PAD];
    __shared__ __align__(16) float zs[NTX_JSTEP][NTX_DSLICE + ROWTILE_PAD];
    __shared__ float invRow[ROWTILE], lseRow[ROWTILE], invCol[ROWTILE], lseCol[ROWTILE];

    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const int rowEnd = rowStart + rowCount;
    const int rowBase = rowStart + blockIdx.x * ROWTILE;
    const int d0 = blockIdx.y * NTX_DSLICE;
    const int colTiles = ceil_div(rows, ROWTILE);

    if (tid < ROWTILE)
    {
        const int row = rowBase + tid;
        invRow[tid] = row < rowEnd ? ntx_inv_norm(norms[row], eps) * invTau : 0.0f;
        lseRow[tid] = row < rowEnd ? rowLse[row] : 0.0f;
    }

    float out[4][8];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int c = 0; c < 8; c++) out[r][c] = 0.0f;

    float acc[4][4];
    for (int t = 0; t < colTiles; t++)
    {
        const int colBase = t * ROWTILE;
        __syncthreads(); // the previous tile is completely consumed (invCol, w, zs)
        if (tid < ROWTILE)
        {
            const int col = colBase + tid;
            invCol[tid] = col < rows ? ntx_inv_norm(norms[col], eps) : 0.0f;
            lseCol[tid] = col < rows ? rowLse[col] : 0.0f;
        }
        row_tile_dots<false>(acc, sm, z, rowEnd, rowBase, z, rows, colBase, dim, nullptr, nullptr);

        // Weights of the tile: P(k, j) + P(j, k) with P(i, j) = exp(s_ij − lse_i); zero on the diagonal
        // and outside the matrix.
#pragma unroll
        for (int r = 0; r < 4; r++)
        {
            const int rl = ty * 4 + r, row = rowBase + rl;
            float wv[4];
#pragma unroll
            for (int c = 0; c < 4; c++)
            {
                const int cl = tx * 4 + c, col = colBase + cl;
                const float s = acc[r][c] * invRow[rl] * invCol[cl];
                wv[c] = (row < rowEnd && col < rows && col != row) ? expf(s - lseRow[rl]) + expf(s - lseCol[cl]) : 0.0f;
            }
            *reinterpret_cast<float4*>(&w[rl][tx * 4]) = make_float4(wv[0], wv[1], wv[2], wv[3]);
        }

        // out += W · Ẑ_J[:, d0 : d0 + 128], with Ẑ_J streamed through shared memory 16 rows at a time.
        for (int j0 = 0; j0 < ROWTILE; j0 += NTX_JSTEP)
        {
            __syncthreads(); // w is complete / the previous zs chunk is consumed
#pragma unroll
            for (int i = 0; i < (NTX_JSTEP * NTX_DSLICE) / ROWTILE_THREADS; i++)
            {
                const int idx = tid + ROWTILE_THREADS * i;
                const int jj = idx / NTX_DSLICE, cc = idx % NTX_DSLICE;
                const int col = colBase + j0 + jj, k = d0 + cc;
                zs[jj][cc] = (col < rows && k < dim) ? z[(i64)col * dim + k] * invCol[j0 + jj] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int jj = 0; jj < NTX_JSTEP; jj++)
            {
                const float4 lo = *reinterpret_cast<const float4*>(&zs[jj][tx * 4]);
                const float4 hi = *reinterpret_cast<const float4*>(&zs[jj][64 + tx * 4]);
                const float zv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
                for (int r = 0; r < 4; r++)
                {
                    const float wr = w[ty * 4 + r][j0 + jj];
#pragma unroll
                    for (int c = 0; c < 8; c++) out[r][c] = fmaf(wr, zv[c], out[r][c]);
                }
            }
        }
    }

#pragma unroll
    for (int r = 0; r < 4; r++)
    {
        const int row = rowBase + ty * 4 + r;
        if (row >= rowEnd) continue;
        float* dst = dzhat + (i64)(row - rowStart) * dim;
#pragma unroll
        for (int c = 0; c < 8; c++)
        {
            const int k = d0 + (c < 4 ? tx * 4 + c : 64 + tx * 4 + (c - 4));
            if (k < dim) dst[k] = coef * out[r][c];
        }
    }
}

// One warp per row of the subset, in place on dz (which holds dẑ from ntxent_bwd_tiles, by local row).
extern "C" __global__ void __launch_bounds__(256) ntxent_bwd_rows(float* __restrict__ dz, const float* __restrict__ z, const float* __restrict__ norms,
    int dim, float eps, float coef, int rowStart, int rowCount, int pairs)
{
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    for (int local = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); local < rowCount; local += gridDim.x * warpsPerBlock)
    {
        const int row = rowStart + local;
        const int pos = ntx_positive(row, pairs);
        const float n = norms[row];
        const float inv = ntx_inv_norm(n, eps);
        const float posScale = -2.0f * coef * ntx_inv_norm(norms[pos], eps);
        const float* zr = z + (i64)row * dim;
        const float* zp = z + (i64)pos * dim;
        float* g = dz + (i64)local * dim;
        float dot = 0.0f;
        for (int k = lane; k < dim; k += 32)
        {
            const float gk = fmaf(posScale, zp[k], g[k]);
            g[k] = gk;
            dot = fmaf(zr[k] * inv, gk, dot);
        }
        dot = warp_reduce_sum(dot);
        // At or below eps the normalization is the linear map z/eps, whose Jacobian is I/eps.
        const float proj = n > eps ? dot : 0.0f;
        for (int k = lane; k < dim; k += 32) g[k] = (g[k] - zr[k] * inv * proj) * inv;
    }
}
