// Synchronized batch norm for data parallelism: BN's training forward and backward split at their
// per-channel reductions, so that NCCL can sum the reductions of every rank in between (IBackend's
// SyncBatchNorm ops; the CPU twin is CpuBackend.SyncBatchNorm.cs). x is NCHW [N, C, S] with S = H·W
// (1 for BatchNorm1d). sums is double[2C + 1] = [Σ per channel, Σ per channel, element count]: the
// accumulators are double, so Σx²/n − mean² keeps its precision (the products of floats are exact).
//
// Launches (the launcher is CudaBackend.SyncBatchNorm.cs):
//   syncbn_stats       one block per channel: sums[c] = Σx, sums[C + c] = Σx², sums[2C] = N·S
//   syncbn_fwd         grid (C, chunks): y = x·scale + shift with mean and biased variance from sums; block
//                      (c, 0) writes the saved mean and 1/σ and updates the running statistics (unbiased)
//   syncbn_bwd_reduce  one block per channel: sums[c] = Σdy, sums[C + c] = Σdy·(x − mean), sums[2C] = N·S,
//                      dgamma[c] += Σdy·(x − mean)/σ, dbeta[c] += Σdy (this rank's share only)
//   syncbn_bwd         grid (C, chunks): dx = k·dy + b·(x − mean) + c0 with the means of dy and dy·x̂ from sums
// Every block reduces in a fixed order, so results are bitwise reproducible.
#include "common.cuh"

// Element e of channel c, e in [0, N·S).
__device__ __forceinline__ i64 sbn_offset(i64 e, int channel, int channels, int spatial)
{
    const i64 n = e / spatial;
    return (n * channels + channel) * spatial + (e - n * spatial);
}

extern "C" __global__ void __launch_bounds__(256) syncbn_stats(double* __restrict__ sums, const float* __restrict__ x,
    int batch, int channels, int spatial)
{
    __shared__ double scratch[32];
    const int c = blockIdx.x;
    const i64 count = (i64)batch * spatial;
    double sum = 0.0, squares = 0.0;
    for (i64 e = threadIdx.x; e < count; e += blockDim.x)
    {
        const double v = x[sbn_offset(e, c, channels, spatial)];
        sum += v;
        squares = fma(v, v, squares);
    }
    sum = block_reduce_sum(sum, scratch);
    squares = block_reduce_sum(squares, scratch);
    if (threadIdx.x == 0)
    {
        sums[c] = sum;
        sums[channels + c] = squares;
        if (c == 0) sums[2 * channels] = (double)count;
    }
}

extern "C" __global__ void __launch_bounds__(256) syncbn_fwd(float* __restrict__ y, float* __restrict__ saveMean, float* __restrict__ saveInvStd,
    float* __restrict__ runningMean, float* __restrict__ runningVar, const float* __restrict__ x, const float* __restrict__ gamma,
    const float* __restrict__ beta, const double* __restrict__ sums, int batch, int channels, int spatial, float eps, float momentum)
{
    const int c = blockIdx.x;
    const double count = sums[2 * channels];
    const double mean = sums[c] / count;
    const double variance = fmax(sums[channels + c] / count - mean * mean, 0.0);
    const double invStd = 1.0 / sqrt(variance + (double)eps);
    const float scale = (float)((double)gamma[c] * invStd);
    const float shift = (float)((double)beta[c] - mean * (double)gamma[c] * invStd);
    const i64 local = (i64)batch * spatial;
    for (i64 e = (i64)blockIdx.y * blockDim.x + threadIdx.x; e < local; e += (i64)gridDim.y * blockDim.x)
    {
        const i64 o = sbn_offset(e, c, channels, spatial);
        y[o] = fmaf(x[o], scale, shift);
    }
    if (blockIdx.y == 0 && threadIdx.x == 0)
    {
        saveMean[c] = (float)mean;
        saveInvStd[c] = (float)invStd;
        const double m = momentum;
        runningMean[c] = (float)((1.0 - m) * runningMean[c] + m * mean);
        runningVar[c] = (float)((1.0 - m) * runningVar[c] + m * variance * count / (count - 1.0));
    }
}

extern "C" __global__ void __launch_bounds__(256) syncbn_bwd_reduce(double* __restrict__ sums, float* __restrict__ dgamma, float* __restrict__ dbeta,
    const float* __restrict__ dy, const float* __restrict__ x, const float* __restrict__ saveMean, const float* __restrict__ saveInvStd,
    int batch, int channels, int spatial)
{
    __shared__ double scratch[32];
    const int c = blockIdx.x;
    const double mean = saveMean[c];
    const i64 count = (i64)batch * spatial;
    double sumDy = 0.0, sumDyCentered = 0.0;
    for (i64 e = threadIdx.x; e < count; e += blockDim.x)
    {
        const i64 o = sbn_offset(e, c, channels, spatial);
        const double g = dy[o];
        sumDy += g;
        sumDyCentered = fma(g, (double)x[o] - mean, sumDyCentered);
    }
    sumDy = block_reduce_sum(sumDy, scratch);
    sumDyCentered = block_reduce_sum(sumDyCentered, scratch);
    if (threadIdx.x == 0)
    {
        sums[c] = sumDy;
        sums[channels + c] = sumDyCentered;
        if (c == 0) sums[2 * channels] = (double)count;
        dgamma[c] += (float)(sumDyCentered * (double)saveInvStd[c]);
        dbeta[c] += (float)sumDy;
    }
}

extern "C" __global__ void __launch_bounds__(256) syncbn_bwd(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ x,
    const float* __restrict__ gamma, const float* __restrict__ saveMean, const float* __restrict__ saveInvStd, const double* __restrict__ sums,
    int batch, int channels, int spatial)
{
    const int c = blockIdx.x;
    const double count = sums[2 * channels];
    const double invStd = saveInvStd[c];
    const double k = (double)gamma[c] * invStd;
    const double meanDy = sums[c] / count, meanDyXhat = sums[channels + c] * invStd / count;
    const float kf = (float)k, b = (float)(-k * invStd * meanDyXhat), c0 = (float)(-k * meanDy), mean = saveMean[c];
    const i64 local = (i64)batch * spatial;
    for (i64 e = (i64)blockIdx.y * blockDim.x + threadIdx.x; e < local; e += (i64)gridDim.y * blockDim.x)
    {
        const i64 o = sbn_offset(e, c, channels, spatial);
        dx[o] = fmaf(dy[o], kf, fmaf(x[o] - mean, b, c0));
    }
}
