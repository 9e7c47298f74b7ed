// Runs kernels/augment.cu under the host emulation of tests/Cuda/Kernels/HostEmulation/cuda_emu.h (each
// CUDA thread a fiber, real block and warp barriers and shuffles), so the kernel's draws, passes, block
// reduction and shared-memory blur execute on machines without a GPU. AugmentKernelEmulationTests
// writes the inputs, runs this program (in both fiber orders, SIMCLR_EMU_REVERSE) and compares its
// views with the C# CPU twin. What augment.cu needs beyond cuda_emu.h is defined here: __syncwarp on
// the emulator's warp barrier, the round-to-nearest intrinsics as plain operations (g++ in ISO mode
// does not contract, like the C# twin), and the dynamic shared memory as an ordinary array.
// Usage: augment_emu <input> <output>. Input (little-endian): int count, height, width, channels, batch,
// threads; the 88-byte AugmentSpec; u64 seed; int epoch, view; count·h·w·c image bytes; batch int32
// sample indices. Output: batch·3·OutH·OutW floats.
#include <cstdio>
#include <vector>
#include "../../Cuda/Kernels/HostEmulation/cuda_emu.h"

static std::vector<float> g_dynamic_shared;
#define AUGMENT_DYNAMIC_SHARED(name) float* name = g_dynamic_shared.data()
inline void __syncwarp() { g_warp_barriers[threadIdx.x / 32].wait(); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
#include "../../../kernels/augment.cu"

template <class T> static bool read(FILE* f, T* p, size_t n) { return fread(p, sizeof(T), n, f) == n; }

int main(int argc, char** argv)
{
    if (argc != 3) { fprintf(stderr, "usage: augment_emu <input> <output>\n"); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) { fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
    int header[6];
    AugmentSpec spec;
    unsigned long long seed;
    int epoch, view;
    static_assert(sizeof(AugmentSpec) == 88, "AugmentSpec must mirror the C# struct");
    if (!read(in, header, 6) || !read(in, &spec, 1) || !read(in, &seed, 1) || !read(in, &epoch, 1) || !read(in, &view, 1))
    {
        fprintf(stderr, "short header\n");
        return 2;
    }
    ImageSetShape set{header[0], header[1], header[2], header[3]};
    const int batch = header[4], threads = header[5];
    std::vector<unsigned char> images((size_t)set.count * set.height * set.width * set.channels);
    std::vector<int> indices(batch);
    if (!read(in, images.data(), images.size()) || !read(in, indices.data(), indices.size()))
    {
        fprintf(stderr, "short input\n");
        return 2;
    }
    fclose(in);

    const int plane = spec.out_height * spec.out_width;
    std::vector<float> views((size_t)batch * 3 * plane, -12345.0f);
    const int line = std::max(spec.out_height, spec.out_width);
    g_dynamic_shared.assign((size_t)(threads / 32) * line + 2 * blur_radius(spec.out_width) + 1 + 2 * blur_radius(spec.out_height) + 1, 0.0f);
    launch(augment_views, {(unsigned)batch}, {(unsigned)threads}, views.data(), (const unsigned char*)images.data(), (const int*)indices.data(),
        set, spec, (u64)seed, epoch, view);

    FILE* out = fopen(argv[2], "wb");
    if (!out || fwrite(views.data(), sizeof(float), views.size(), out) != views.size()) { fprintf(stderr, "cannot write %s\n", argv[2]); return 2; }
    fclose(out);
    return 0;
}
