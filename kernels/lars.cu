// Multi-tensor optimizer updates over the flat parameter buffer: LARS (SimCLR's TF semantics, see
// LarsHyper in src/Kernels/OpShapes.cs) and SGD with classic or Nesterov momentum. Every launch covers
// all tensors at once: grid.y is the segment, grid.x a fixed number of chunks that stride over it.
//
// lars_norms  computes ‖w‖ and ‖g'‖ (g' = g + wd·w unless NoWeightDecay) for every segment in ONE launch:
//             each (segment, chunk) block reduces its strided share in double and writes a partial; the
//             last block of a segment to finish (ticket counter) sums the partials in chunk order and
//             writes normScratch[2s], normScratch[2s+1], then re-arms the counter. The result is bitwise
//             deterministic (no float atomics) and the launch is replayable inside a CUDA graph.
// lars_update applies g', the trust ratio, momentum and the step.
#include "common.cuh"

#define SEG_NO_WEIGHT_DECAY 1
#define SEG_NO_ADAPTATION 2

// Mirrors SimClr.Kernels.ParamSegment (24 bytes, sequential, pack 8).
struct ParamSegment
{
    i64 offset;
    i64 length;
    int flags;
    int pad;
};

// This block's share of a segment: a grid of `chunks` blocks strides over it.
__device__ __forceinline__ i64 chunk_start(int chunk) { return (i64)chunk * blockDim.x + threadIdx.x; }
__device__ __forceinline__ i64 chunk_stride(int chunks) { return (i64)chunks * blockDim.x; }

extern "C" __global__ void __launch_bounds__(256) lars_norms(float* __restrict__ normScratch, double* __restrict__ partials,
    unsigned int* __restrict__ counters, const float* __restrict__ param, const float* __restrict__ grad,
    const ParamSegment* __restrict__ segments, int chunks, float weightDecay)
{
    __shared__ double scratch[32];
    const int seg = blockIdx.y, chunk = blockIdx.x;
    const ParamSegment sg = segments[seg];
    const float wd = (sg.flags & SEG_NO_WEIGHT_DECAY) ? 0.0f : weightDecay;
    const float* w = param + sg.offset;
    const float* g = grad + sg.offset;
    const bool aligned = is_aligned16(w) && is_aligned16(g);

    double sw = 0.0, sgg = 0.0;
    strided_for_each4(sg.length, aligned, chunk_start(chunk), chunk_stride(chunks),
        [&](i64 q) {
            const float4 w4 = reinterpret_cast<const float4*>(w)[q];
            const float4 g4 = reinterpret_cast<const float4*>(g)[q];
            const float wv[4] = {w4.x, w4.y, w4.z, w4.w};
            const float gv[4] = {g4.x, g4.y, g4.z, g4.w};
#pragma unroll
            for (int e = 0; e < 4; e++)
            {
                const float gd = gv[e] + wd * wv[e];
                sw += (double)wv[e] * wv[e];
                sgg += (double)gd * gd;
            }
        },
        [&](i64 i) {
            const float wv = w[i];
            const float gd = g[i] + wd * wv;
            sw += (double)wv * wv;
            sgg += (double)gd * gd;
        });

    sw = block_reduce_sum(sw, scratch);
    sgg = block_reduce_sum(sgg, scratch);

    if (threadIdx.x == 0)
    {
        double* mine = partials + ((i64)seg * chunks + chunk) * 2;
        mine[0] = sw;
        mine[1] = sgg;
        __threadfence(); // the partial is visible device-wide before the ticket is taken
        const unsigned int ticket = atomicAdd(&counters[seg], 1u);
        if (ticket != (unsigned int)(chunks - 1)) return;
        // Last block of the segment: every other partial is visible (they fenced before their tickets).
        __threadfence();
        const volatile double* all = partials + (i64)seg * chunks * 2;
        double tw = 0.0, tg = 0.0;
        for (int c = 0; c < chunks; c++)
        {
            tw += all[2 * c];
            tg += all[2 * c + 1];
        }
        normScratch[2 * seg] = (float)sqrt(tw);
        normScratch[2 * seg + 1] = (float)sqrt(tg);
        counters[seg] = 0u;
    }
}

extern "C" __global__ void __launch_bounds__(256) lars_update(float* __restrict__ param, float* __restrict__ momentum,
    const float* __restrict__ grad, const ParamSegment* __restrict__ segments, const float* __restrict__ normScratch,
    int chunks, float learningRate, float momentumCoef, float weightDecay, float trustCoef)
{
    const int seg = blockIdx.y;
    const ParamSegment sg = segments[seg];
    const float wd = (sg.flags & SEG_NO_WEIGHT_DECAY) ? 0.0f : weightDecay;
    const float wn = normScratch[2 * seg], gn = normScratch[2 * seg + 1];
    const float trust = (sg.flags & SEG_NO_ADAPTATION) ? 1.0f : (wn > 0.0f && gn > 0.0f ? trustCoef * wn / gn : 1.0f);
    const float scaled = learningRate * trust;
    float* w = param + sg.offset;
    float* v = momentum + sg.offset;
    const float* g = grad + sg.offset;
    const bool aligned = is_aligned16(w) && is_aligned16(v) && is_aligned16(g);

    strided_for_each4(sg.length, aligned, chunk_start(blockIdx.x), chunk_stride(chunks),
        [&](i64 q) {
            float4 w4 = reinterpret_cast<float4*>(w)[q];
            float4 v4 = reinterpret_cast<float4*>(v)[q];
            const float4 g4 = reinterpret_cast<const float4*>(g)[q];
            v4.x = momentumCoef * v4.x + scaled * (g4.x + wd * w4.x);
            v4.y = momentumCoef * v4.y + scaled * (g4.y + wd * w4.y);
            v4.z = momentumCoef * v4.z + scaled * (g4.z + wd * w4.z);
            v4.w = momentumCoef * v4.w + scaled * (g4.w + wd * w4.w);
            w4.x -= v4.x;
            w4.y -= v4.y;
            w4.z -= v4.z;
            w4.w -= v4.w;
            reinterpret_cast<float4*>(v)[q] = v4;
            reinterpret_cast<float4*>(w)[q] = w4;
        },
        [&](i64 i) {
            const float wv = w[i];
            const float vv = momentumCoef * v[i] + scaled * (g[i] + wd * wv);
            v[i] = vv;
            w[i] = wv - vv;
        });
}

// SGD: g' = g + wd·w (unless NoWeightDecay); v = m·v + g'; w -= lr·v, or w -= lr·(g' + m·v) for Nesterov.
extern "C" __global__ void __launch_bounds__(256) sgd_update(float* __restrict__ param, float* __restrict__ momentum,
    const float* __restrict__ grad, const ParamSegment* __restrict__ segments,
    int chunks, float learningRate, float momentumCoef, float weightDecay, int nesterov)
{
    const int seg = blockIdx.y;
    const ParamSegment sg = segments[seg];
    const float wd = (sg.flags & SEG_NO_WEIGHT_DECAY) ? 0.0f : weightDecay;
    float* w = param + sg.offset;
    float* v = momentum + sg.offset;
    const float* g = grad + sg.offset;
    const bool aligned = is_aligned16(w) && is_aligned16(v) && is_aligned16(g);

    auto step = [&](float& wv, float& vv, float gv) {
        const float gd = gv + wd * wv;
        vv = momentumCoef * vv + gd;
        wv -= learningRate * (nesterov ? gd + momentumCoef * vv : vv);
    };
    strided_for_each4(sg.length, aligned, chunk_start(blockIdx.x), chunk_stride(chunks),
        [&](i64 q) {
            float4 w4 = reinterpret_cast<float4*>(w)[q];
            float4 v4 = reinterpret_cast<float4*>(v)[q];
            const float4 g4 = reinterpret_cast<const float4*>(g)[q];
            step(w4.x, v4.x, g4.x);
            step(w4.y, v4.y, g4.y);
            step(w4.z, v4.z, g4.z);
            step(w4.w, v4.w, g4.w);
            reinterpret_cast<float4*>(v)[q] = v4;
            reinterpret_cast<float4*>(w)[q] = w4;
        },
        [&](i64 i) {
            float wv = w[i], vv = v[i];
            step(wv, vv, g[i]);
            v[i] = vv;
            w[i] = wv;
        });
}
