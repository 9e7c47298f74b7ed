// Memory-bound element-wise and row-wise ops of the CUDA backend: fill, copy, scale, axpy, add, ReLU,
// global average pooling, row L2 normalization and softmax cross-entropy. Element-wise kernels are
// 64-bit grid-stride loops that move float4s when every pointer is 16-byte aligned (a scalar tail
// handles the rest); row-wise kernels give one warp to a row. The cross-entropy mean is deterministic:
// a fixed grid writes one partial per block and mean_reduce sums them in a fixed order.
// Accumulation rule (IBackend): activation gradients (dx, dlogits) are overwritten.
#include "common.cuh"

#define EW_ALIGNED2(a, b) (is_aligned16(a) && is_aligned16(b))
#define EW_ALIGNED3(a, b, c) (is_aligned16(a) && is_aligned16(b) && is_aligned16(c))

extern "C" __global__ void __launch_bounds__(256) fill_f32(float* __restrict__ x, i64 n, float value)
{
    strided_for_each4(n, is_aligned16(x), global_thread_index(), grid_stride(),
        [&](i64 q) { reinterpret_cast<float4*>(x)[q] = make_float4(value, value, value, value); },
        [&](i64 i) { x[i] = value; });
}

extern "C" __global__ void __launch_bounds__(256) copy_f32(float* __restrict__ dst, const float* __restrict__ src, i64 n)
{
    strided_for_each4(n, EW_ALIGNED2(dst, src), global_thread_index(), grid_stride(),
        [&](i64 q) { reinterpret_cast<float4*>(dst)[q] = reinterpret_cast<const float4*>(src)[q]; },
        [&](i64 i) { dst[i] = src[i]; });
}

extern "C" __global__ void __launch_bounds__(256) scale_f32(float* __restrict__ x, i64 n, float alpha)
{
    strided_for_each4(n, is_aligned16(x), global_thread_index(), grid_stride(),
        [&](i64 q) {
            float4 v = reinterpret_cast<float4*>(x)[q];
            v.x *= alpha;
            v.y *= alpha;
            v.z *= alpha;
            v.w *= alpha;
            reinterpret_cast<float4*>(x)[q] = v;
        },
        [&](i64 i) { x[i] *= alpha; });
}

// y ← y + alpha·x; x may alias y.
extern "C" __global__ void __launch_bounds__(256) axpy_f32(float* y, const float* x, i64 n, float alpha)
{
    strided_for_each4(n, EW_ALIGNED2(y, x), global_thread_index(), grid_stride(),
        [&](i64 q) {
            float4 v = reinterpret_cast<float4*>(y)[q];
            const float4 u = reinterpret_cast<const float4*>(x)[q];
            v.x += alpha * u.x;
            v.y += alpha * u.y;
            v.z += alpha * u.z;
            v.w += alpha * u.w;
            reinterpret_cast<float4*>(y)[q] = v;
        },
        [&](i64 i) { y[i] += alpha * x[i]; });
}

// y ← a + b; y may alias a or b (each element is read before it is written, by the same thread).
extern "C" __global__ void __launch_bounds__(256) add_f32(float* y, const float* a, const float* b, i64 n)
{
    strided_for_each4(n, EW_ALIGNED3(y, a, b), global_thread_index(), grid_stride(),
        [&](i64 q) {
            const float4 u = reinterpret_cast<const float4*>(a)[q];
            const float4 v = reinterpret_cast<const float4*>(b)[q];
            reinterpret_cast<float4*>(y)[q] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
        },
        [&](i64 i) { y[i] = a[i] + b[i]; });
}

__device__ __forceinline__ float relu(float x) { return x > 0.0f ? x : 0.0f; }

// y may alias x (in-place ReLU).
extern "C" __global__ void __launch_bounds__(256) relu_fwd(float* y, const float* x, i64 n)
{
    strided_for_each4(n, EW_ALIGNED2(y, x), global_thread_index(), grid_stride(),
        [&](i64 q) {
            const float4 u = reinterpret_cast<const float4*>(x)[q];
            reinterpret_cast<float4*>(y)[q] = make_float4(relu(u.x), relu(u.y), relu(u.z), relu(u.w));
        },
        [&](i64 i) { y[i] = relu(x[i]); });
}

// dx ← dy·[y > 0]; dx may alias dy or y (each element is read before it is written, by the same thread).
extern "C" __global__ void __launch_bounds__(256) relu_bwd(float* dx, const float* dy, const float* y, i64 n)
{
    strided_for_each4(n, EW_ALIGNED3(dx, dy, y), global_thread_index(), grid_stride(),
        [&](i64 q) {
            const float4 g = reinterpret_cast<const float4*>(dy)[q];
            const float4 v = reinterpret_cast<const float4*>(y)[q];
            reinterpret_cast<float4*>(dx)[q] = make_float4(v.x > 0.0f ? g.x : 0.0f, v.y > 0.0f ? g.y : 0.0f,
                v.z > 0.0f ? g.z : 0.0f, v.w > 0.0f ? g.w : 0.0f);
        },
        [&](i64 i) { dx[i] = y[i] > 0.0f ? dy[i] : 0.0f; });
}

// y[row] = mean of x[row, 0:spatial] for rows = batch·channels; one warp per row.
extern "C" __global__ void __launch_bounds__(256) global_avg_pool_fwd(float* __restrict__ y, const float* __restrict__ x, i64 rows, int spatial)
{
    const int lane = threadIdx.x & 31;
    const i64 warpsPerBlock = blockDim.x >> 5;
    const float invSpatial = 1.0f / (float)spatial;
    for (i64 row = (i64)blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); row < rows; row += (i64)gridDim.x * warpsPerBlock)
    {
        const float* xr = x + row * spatial;
        float sum = 0.0f;
        for (int k = lane; k < spatial; k += 32) sum += xr[k];
        sum = warp_reduce_sum(sum);
        if (lane == 0) y[row] = sum * invSpatial;
    }
}

// dx[row, s] = dy[row] / spatial (overwrites dx).
extern "C" __global__ void __launch_bounds__(256) global_avg_pool_bwd(float* __restrict__ dx, const float* __restrict__ dy, i64 rows, int spatial)
{
    const float invSpatial = 1.0f / (float)spatial;
    const i64 n = rows * spatial;
    const bool narrow = n <= 0xffffffffll; // 32-bit division is several times cheaper than 64-bit
    for (i64 i = global_thread_index(); i < n; i += grid_stride())
        dx[i] = dy[narrow ? (i64)((u32)i / (u32)spatial) : i / spatial] * invSpatial;
}

// y = x / max(‖x‖, eps) per row, norms[row] = ‖x‖; one warp per row.
extern "C" __global__ void __launch_bounds__(256) l2_normalize_fwd(float* __restrict__ y, float* __restrict__ norms, const float* __restrict__ x,
    int rows, int cols, float eps)
{
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    for (int row = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); row < rows; row += gridDim.x * warpsPerBlock)
    {
        const float* xr = x + (i64)row * cols;
        float* yr = y + (i64)row * cols;
        float sq = 0.0f;
        for (int k = lane; k < cols; k += 32) sq = fmaf(xr[k], xr[k], sq);
        sq = warp_reduce_sum(sq);
        const float n = sqrtf(sq);
        const float inv = 1.0f / fmaxf(n, eps);
        for (int k = lane; k < cols; k += 32) yr[k] = xr[k] * inv;
        if (lane == 0) norms[row] = n;
    }
}

// dx = (dy − y(y·dy)) / ‖x‖, or dy/eps where ‖x‖ ≤ eps (there y = x/eps is linear); one warp per row.
extern "C" __global__ void __launch_bounds__(256) l2_normalize_bwd(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ y,
    const float* __restrict__ norms, int rows, int cols, float eps)
{
    const int lane = threadIdx.x & 31;
    const int warpsPerBlock = blockDim.x >> 5;
    for (int row = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); row < rows; row += gridDim.x * warpsPerBlock)
    {
        const float* gr = dy + (i64)row * cols;
        const float* yr = y + (i64)row * cols;
        float* dr = dx + (i64)row * cols;
        const float n = norms[row];
        float dot = 0.0f;
        for (int k = lane; k < cols; k += 32) dot = fmaf(yr[k], gr[k], dot);
        dot = warp_reduce_sum(dot);
        const float proj = n > eps ? dot : 0.0f;
        const float inv = 1.0f / fmaxf(n, eps);
        for (int k = lane; k < cols; k += 32) dr[k] = (gr[k] - yr[k] * proj) * inv;
    }
}

// probs = softmax(logits) per row; blockTerms[block] = Σ over the block's rows of lse − logit[label].
// One warp per row over a grid fixed by the launcher. A label outside [0, classes) makes its term NaN,
// so the loss reports the bad input instead of reading out of bounds.
extern "C" __global__ void __launch_bounds__(256) softmax_xent_fwd(float* __restrict__ probs, float* __restrict__ blockTerms,
    const float* __restrict__ logits, const int* __restrict__ labels, int rows, int classes)
{
    __shared__ double warpTerms[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int warpsPerBlock = blockDim.x >> 5;
    double terms = 0.0;
    for (int row = blockIdx.x * warpsPerBlock + warp; row < rows; row += gridDim.x * warpsPerBlock)
    {
        const float* xr = logits + (i64)row * classes;
        float* pr = probs + (i64)row * classes;
        float mx = SIMCLR_NEG_INF_F;
        for (int k = lane; k < classes; k += 32) mx = fmaxf(mx, xr[k]);
        mx = warp_reduce_max(mx);
        float sum = 0.0f;
        for (int k = lane; k < classes; k += 32) sum += expf(xr[k] - mx);
        sum = warp_reduce_sum(sum);
        const float inv = 1.0f / sum;
        for (int k = lane; k < classes; k += 32) pr[k] = expf(xr[k] - mx) * inv;
        if (lane == 0)
        {
            const int label = labels[row];
            const float lse = mx + logf(sum);
            terms += (label >= 0 && label < classes) ? (double)lse - (double)xr[label] : (double)__int_as_float(0x7fc00000);
        }
    }
    if (lane == 0) warpTerms[warp] = terms;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        double total = 0.0;
        for (int w = 0; w < warpsPerBlock; w++) total += warpTerms[w];
        blockTerms[blockIdx.x] = (float)total;
    }
}

// dlogits = scale·(probs − onehot(label)), scale = lossGrad / batch.
extern "C" __global__ void __launch_bounds__(256) softmax_xent_bwd(float* __restrict__ dlogits, const float* __restrict__ probs,
    const int* __restrict__ labels, int rows, int classes, float scale)
{
    const i64 n = (i64)rows * classes;
    const bool narrow = n <= 0xffffffffll; // 32-bit division is several times cheaper than 64-bit
    for (i64 i = global_thread_index(); i < n; i += grid_stride())
    {
        const int row = narrow ? (int)((u32)i / (u32)classes) : (int)(i / classes);
        const int col = (int)(i - (i64)row * classes);
        dlogits[i] = scale * (probs[i] - (col == labels[row] ? 1.0f : 0.0f));
    }
}

// One block: out[0] = scale · Σ partials, summed in a fixed order.
extern "C" __global__ void __launch_bounds__(256) mean_reduce(float* __restrict__ out, const float* __restrict__ partials, int count, float scale)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_reduce_sum(sum, scratch);
    if (threadIdx.x == 0) out[0] = (float)(sum * (double)scale);
}
