// Max pooling over NCHW planes with the CPU twin's rule (src/Kernels/Cpu/CpuBackend.Pool.cs): a window's
// maximum is its FIRST maximum in row-major scan order (a later equal value never replaces it, so ties and
// all-equal windows after ReLU route the gradient to one element; a NaN is never a maximum unless it comes
// first), and padded positions are skipped, never taken. The CUDA backend runs these instead of cuDNN when
// CudaBackendOptions.MaxPool is Kernel, which guarantees the twin's tie rule whatever cuDNN does with ties.
//
// maxpool_fwd  one thread per output element (grid-stride): y = x[first argmax of its window].
// maxpool_bwd  one thread per INPUT element (grid-stride, a gather): it visits the outputs whose windows
//              hold it in increasing (oh, ow) order, recomputes each window's argmax from x and adds dy
//              where the argmax is itself. No atomics, so the result is deterministic, and the summation
//              order is the twin's (dx[i] starts at 0 and receives its outputs in scan order): bitwise equal.
// Accumulation: both overwrite their output.
#include "common.cuh"

// Row-major index in the plane of the first maximum of output (oh, ow)'s window.
__device__ __forceinline__ int pool_first_argmax(const float* __restrict__ plane, int height, int width,
    int window, int stride, int pad, int oh, int ow)
{
    const int h0 = oh * stride - pad, w0 = ow * stride - pad;
    const int hEnd = min(h0 + window, height), wEnd = min(w0 + window, width);
    int best = -1;
    float bestValue = 0.0f;
    for (int ih = max(h0, 0); ih < hEnd; ih++)
        for (int iw = max(w0, 0); iw < wEnd; iw++)
        {
            const int i = ih * width + iw;
            const float v = plane[i];
            if (best < 0 || v > bestValue)
            {
                best = i;
                bestValue = v;
            }
        }
    return best;
}

// Launch: grid-stride over planes * outH * outW outputs, 256 threads per block.
extern "C" __global__ void __launch_bounds__(256) maxpool_fwd(float* __restrict__ y, const float* __restrict__ x,
    int planes, int height, int width, int outH, int outW, int window, int stride, int pad)
{
    const i64 outPlane = (i64)outH * outW;
    const i64 n = (i64)planes * outPlane;
    for (i64 idx = global_thread_index(); idx < n; idx += grid_stride())
    {
        const i64 p = idx / outPlane;
        const int r = (int)(idx - p * outPlane);
        const int oh = r / outW, ow = r - oh * outW;
        const float* plane = x + p * height * width;
        y[idx] = plane[pool_first_argmax(plane, height, width, window, stride, pad, oh, ow)];
    }
}

// Launch: grid-stride over planes * height * width inputs, 256 threads per block.
extern "C" __global__ void __launch_bounds__(256) maxpool_bwd(float* __restrict__ dx, const float* __restrict__ dy,
    const float* __restrict__ x, int planes, int height, int width, int outH, int outW, int window, int stride, int pad)
{
    const i64 inPlane = (i64)height * width;
    const i64 outPlane = (i64)outH * outW;
    const i64 n = (i64)planes * inPlane;
    for (i64 idx = global_thread_index(); idx < n; idx += grid_stride())
    {
        const i64 p = idx / inPlane;
        const int self = (int)(idx - p * inPlane);
        const int ih = self / width, iw = self - ih * width;
        // Outputs whose window [o*stride - pad, o*stride - pad + window) holds this row / column.
        const int ohFirst = max(0, (ih + pad - window + stride) / stride), ohLast = min(outH - 1, (ih + pad) / stride);
        const int owFirst = max(0, (iw + pad - window + stride) / stride), owLast = min(outW - 1, (iw + pad) / stride);
        const float* plane = x + p * inPlane;
        const float* dyPlane = dy + p * outPlane;
        float sum = 0.0f;
        for (int oh = ohFirst; oh <= ohLast; oh++)
            for (int ow = owFirst; ow <= owLast; ow++)
                if (pool_first_argmax(plane, height, width, window, stride, pad, oh, ow) == self) sum += dyPlane[oh * outW + ow];
        dx[idx] = sum;
    }
}
