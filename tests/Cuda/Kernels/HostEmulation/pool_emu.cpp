// Runs kernels/pool.cu under host emulation against the CPU twin's max-pool rule written out here in plain
// C++ (src/Kernels/Cpu/CpuBackend.Pool.cs: first maximum in row-major scan order, padding skipped; backward
// adds each dy into a cleared dx in output scan order). The kernels must match it bit for bit, on random
// inputs, on windows where every element ties (all zeros, as after ReLU), on ReLU-clamped inputs with many
// ties, and with NaNs, for the pooling shapes ResNets use and odd ones, with grids too small to cover the
// problem in one pass (grid-stride loops).
#include "cuda_emu.h"
#include "../../../../kernels/pool.cu"
#include <cstring>

static int first_argmax(const float* plane, int H, int W, int k, int s, int p, int oh, int ow)
{
    int h0 = oh * s - p, w0 = ow * s - p, best = -1;
    float bestValue = 0;
    for (int ih = std::max(h0, 0); ih < std::min(h0 + k, H); ih++)
        for (int iw = std::max(w0, 0); iw < std::min(w0 + k, W); iw++)
        {
            int i = ih * W + iw;
            if (best < 0 || plane[i] > bestValue)
            {
                best = i;
                bestValue = plane[i];
            }
        }
    return best;
}

// Counts the elements that differ in bits (NaN payloads included), as a relative "error" for report().
static double bit_mismatches(const std::vector<float>& a, const std::vector<float>& b)
{
    size_t bad = 0;
    for (size_t i = 0; i < a.size(); i++) bad += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return (double)bad;
}

enum class Fill { Random, AllZero, ReluTies, WithNaN };

static void check(const char* label, int planes, int H, int W, int k, int s, int p, Fill fill, unsigned grid)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    std::mt19937 rng(planes * 131 + H * 7 + W + k);
    std::normal_distribution<float> nd;
    std::vector<float> x((size_t)planes * H * W), dy((size_t)planes * OH * OW);
    for (auto& v : x)
    {
        float r = nd(rng);
        v = fill == Fill::AllZero ? 0.0f : fill == Fill::ReluTies ? std::max(r, 0.0f) : r;
    }
    if (fill == Fill::WithNaN)
        for (size_t i = 0; i < x.size(); i += 7) x[i] = NAN;
    for (auto& v : dy) v = nd(rng);

    std::vector<float> want_y(dy.size()), want_dx(x.size(), 0.0f);
    for (int pl = 0; pl < planes; pl++)
    {
        const float* plane = x.data() + (size_t)pl * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
            {
                int a = first_argmax(plane, H, W, k, s, p, oh, ow);
                want_y[(size_t)pl * OH * OW + oh * OW + ow] = plane[a];
                want_dx[(size_t)pl * H * W + a] += dy[(size_t)pl * OH * OW + oh * OW + ow];
            }
    }
    std::vector<float> y(dy.size(), -7.0f), dx(x.size(), -7.0f);
    launch(maxpool_fwd, {grid}, {256}, y.data(), (const float*)x.data(), planes, H, W, OH, OW, k, s, p);
    launch(maxpool_bwd, {grid}, {256}, dx.data(), (const float*)dy.data(), (const float*)x.data(), planes, H, W, OH, OW, k, s, p);
    char buf[96];
    snprintf(buf, sizeof buf, "%s fwd %dx%dx%d k%d s%d p%d (bits)", label, planes, H, W, k, s, p);
    report(buf, bit_mismatches(y, want_y), 0);
    snprintf(buf, sizeof buf, "%s bwd %dx%dx%d k%d s%d p%d (bits)", label, planes, H, W, k, s, p);
    report(buf, bit_mismatches(dx, want_dx), 0);
}

int main()
{
    for (Fill f : {Fill::Random, Fill::AllZero, Fill::ReluTies, Fill::WithNaN})
    {
        const char* label = f == Fill::Random ? "random" : f == Fill::AllZero ? "all-zero" : f == Fill::ReluTies ? "relu-ties" : "nan";
        check(label, 6, 16, 16, 3, 2, 1, f, 2);   // the ResNet ImageNet stem's pool
        check(label, 3, 9, 11, 3, 2, 1, f, 1);
        check(label, 4, 8, 8, 2, 2, 0, f, 3);
        check(label, 2, 7, 10, 3, 1, 1, f, 1);
        check(label, 2, 10, 10, 3, 3, 0, f, 2);
        check(label, 1, 5, 4, 4, 1, 2, f, 1);
    }
    return finish();
}
