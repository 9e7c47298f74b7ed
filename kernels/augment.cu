// SimCLR's augmentation on the GPU, one launch per view batch: block b turns image sample_indices[b]
// into views[b] (3 x OutH x OutW, NCHW, normalized). The CPU twin, src/Kernels/Cpu/AugmentReference.cs,
// defines every formula and the Philox slot table; this file computes the same numbers in the same
// order (geometry in double, pixels in float), so the two agree to float rounding.
//
// Philox: key = seed, counter = (sample index, epoch, view, block), four words per block:
//   block 0..9  crop attempt a:  x area fraction   y log-aspect   z top       w left
//   block 10    gates:           x flip            y jitter       z grayscale w blur       (apply iff u < p)
//   block 11    jitter factors:  x brightness      y contrast     z saturation w hue shift
//   block 12    order and sigma: x,y,z Fisher–Yates draws of the jitter order, w blur sigma
//
// Block plan: thread 0 draws every decision into shared memory. Pass 1: each thread samples its pixels
// (crop + bilinear + flip) and applies the jitter transforms that come before contrast. Contrast needs
// the mean gray of the whole view, so when it runs the pass stores the pixels into the view and the block
// reduces their gray sum (in double); pass 2 reloads the same pixels (same thread, no barrier needed),
// applies contrast and the remaining transforms and grayscale. Without blur the pixels are normalized on
// the way out; with blur they are stored raw and blurred in place through shared memory, rows by warps,
// then columns by warps, normalizing on the column pass. Sample indices outside the set produce NaN
// views rather than reading out of bounds.
#include "common.cuh"

// The dynamic shared memory of augment_views. A macro so that the host emulation used by the tests
// (tests/Augmentation/HostEmulation) can hand the kernel an ordinary array instead.
#ifndef AUGMENT_DYNAMIC_SHARED
#define AUGMENT_DYNAMIC_SHARED(name) extern __shared__ float name[]
#endif

// Mirrors SimClr.Kernels.AugmentSpec field for field (22 x 4 bytes, passed by value).
struct AugmentSpec
{
    int out_height, out_width;
    float crop_area_min, crop_area_max, aspect_min, aspect_max;
    float flip_probability, jitter_probability;
    float brightness, contrast, saturation, hue;
    float grayscale_probability, blur_probability, blur_sigma_min, blur_sigma_max;
    float mean_r, mean_g, mean_b, std_r, std_g, std_b;
};

// Mirrors SimClr.Kernels.ImageSetShape: uint8 [count, height, width, channels].
struct ImageSetShape
{
    int count, height, width, channels;
};

enum JitterOp { OP_BRIGHTNESS = 0, OP_CONTRAST = 1, OP_SATURATION = 2, OP_HUE = 3 };

#define AUG_CROP_ATTEMPTS 10
#define AUG_GATE_BLOCK 10
#define AUG_FACTOR_BLOCK 11
#define AUG_ORDER_BLOCK 12
#define AUG_GRAY_R 0.299f
#define AUG_GRAY_G 0.587f
#define AUG_GRAY_B 0.114f

struct AugmentDraw
{
    int top, left, crop_height, crop_width;
    int flip, jitter, grayscale, blur;
    float brightness, contrast, saturation, hue_shift, sigma;
    int op[4];
};

__device__ __forceinline__ int uniform_int(u32 x, int n)
{
    return (int)(((u64)(x >> 8) * (u64)n) >> 24);
}

__device__ __forceinline__ float jitter_factor(float strength, float u)
{
    const float lo = fmaxf(0.0f, 1.0f - strength), hi = 1.0f + strength;
    return __fadd_rn(lo, __fmul_rn(u, hi - lo));
}

__device__ void draw_augment(AugmentDraw& d, const AugmentSpec& spec, int height, int width, uint2 key, int sample, int epoch, int view)
{
    const double area = (double)height * (double)width;
    const double log_min = log((double)spec.aspect_min), log_max = log((double)spec.aspect_max);
    bool found = false;
    for (u32 attempt = 0; attempt < AUG_CROP_ATTEMPTS && !found; attempt++)
    {
        const uint4 b = philox4x32_10(make_uint4((u32)sample, (u32)epoch, (u32)view, attempt), key);
        const double target = area * ((double)spec.crop_area_min + (double)philox_uniform(b.x) * ((double)spec.crop_area_max - (double)spec.crop_area_min));
        const double aspect = exp(log_min + (double)philox_uniform(b.y) * (log_max - log_min));
        const int w = (int)rint(sqrt(target * aspect));
        const int h = (int)rint(sqrt(target / aspect));
        if (w > 0 && w <= width && h > 0 && h <= height)
        {
            d.top = uniform_int(b.z, height - h + 1);
            d.left = uniform_int(b.w, width - w + 1);
            d.crop_height = h;
            d.crop_width = w;
            found = true;
        }
    }
    if (!found)
    {
        const double in_ratio = (double)width / (double)height;
        int cw = width, ch = height;
        if (in_ratio < (double)spec.aspect_min) ch = (int)rint((double)cw / (double)spec.aspect_min);
        else if (in_ratio > (double)spec.aspect_max) cw = (int)rint((double)ch * (double)spec.aspect_max);
        ch = min(max(ch, 1), height);
        cw = min(max(cw, 1), width);
        d.crop_height = ch;
        d.crop_width = cw;
        d.top = (height - ch) / 2;
        d.left = (width - cw) / 2;
    }

    const uint4 gates = philox4x32_10(make_uint4((u32)sample, (u32)epoch, (u32)view, AUG_GATE_BLOCK), key);
    d.flip = philox_uniform(gates.x) < spec.flip_probability;
    d.jitter = philox_uniform(gates.y) < spec.jitter_probability;
    d.grayscale = philox_uniform(gates.z) < spec.grayscale_probability;
    d.blur = philox_uniform(gates.w) < spec.blur_probability;

    const uint4 f = philox4x32_10(make_uint4((u32)sample, (u32)epoch, (u32)view, AUG_FACTOR_BLOCK), key);
    d.brightness = jitter_factor(spec.brightness, philox_uniform(f.x));
    d.contrast = jitter_factor(spec.contrast, philox_uniform(f.y));
    d.saturation = jitter_factor(spec.saturation, philox_uniform(f.z));
    d.hue_shift = __fadd_rn(-spec.hue, __fmul_rn(philox_uniform(f.w), 2.0f * spec.hue));

    const uint4 o = philox4x32_10(make_uint4((u32)sample, (u32)epoch, (u32)view, AUG_ORDER_BLOCK), key);
    int order[4] = { OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE };
    int j, t;
    j = uniform_int(o.x, 4); t = order[3]; order[3] = order[j]; order[j] = t;
    j = uniform_int(o.y, 3); t = order[2]; order[2] = order[j]; order[j] = t;
    j = uniform_int(o.z, 2); t = order[1]; order[1] = order[j]; order[j] = t;
    for (int k = 0; k < 4; k++) d.op[k] = order[k];
    d.sigma = __fadd_rn(spec.blur_sigma_min, __fmul_rn(philox_uniform(o.w), spec.blur_sigma_max - spec.blur_sigma_min));
}

__device__ __forceinline__ float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

__device__ __forceinline__ float gray_of(float r, float g, float b)
{
    return __fadd_rn(__fadd_rn(__fmul_rn(AUG_GRAY_R, r), __fmul_rn(AUG_GRAY_G, g)), __fmul_rn(AUG_GRAY_B, b));
}

// Where output coordinate o samples a crop of `crop` pixels resized to `output`: half-pixel centres,
// clamped below at 0 and to the crop's last pixel. Rounded steps spelled out so no contraction moves a
// floor() across an integer.
__device__ __forceinline__ void sample_coordinate(int o, int crop, int output, int& i0, int& i1, float& frac)
{
    const float scale = __fdiv_rn((float)crop, (float)output);
    float s = __fadd_rn(__fmul_rn(__fadd_rn((float)o, 0.5f), scale), -0.5f);
    if (s < 0.0f) s = 0.0f;
    i0 = (int)s;
    if (i0 > crop - 1) i0 = crop - 1;
    i1 = i0 + 1 < crop ? i0 + 1 : crop - 1;
    frac = __fadd_rn(s, -(float)i0);
}

__device__ __forceinline__ float bilinear(float v00, float v01, float v10, float v11, float fx, float fy)
{
    const float top = v00 * (1.0f - fx) + v01 * fx;
    const float bottom = v10 * (1.0f - fx) + v11 * fx;
    return top * (1.0f - fy) + bottom * fy;
}

__device__ __forceinline__ float unit_byte(unsigned char v) { return __fdiv_rn((float)v, 255.0f); }

// torchvision's _rgb2hsv, H <- (H + shift) mod 1, _hsv2rgb; matches AugmentReference.HuePixel.
__device__ void hue_pixel(float& r, float& g, float& b, float shift)
{
    const float maxc = fmaxf(r, fmaxf(g, b));
    const float minc = fminf(r, fminf(g, b));
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    const float s = __fdiv_rn(cr, eqc ? 1.0f : maxc);
    const float divisor = eqc ? 1.0f : cr;
    const float rc = __fdiv_rn(maxc - r, divisor), gc = __fdiv_rn(maxc - g, divisor), bc = __fdiv_rn(maxc - b, divisor);
    float h;
    if (maxc == r) h = bc - gc;
    else if (maxc == g) h = 2.0f + rc - bc;
    else h = 4.0f + gc - rc;
    h = __fadd_rn(__fdiv_rn(h, 6.0f), 1.0f);
    h -= floorf(h);
    h = __fadd_rn(h, shift);
    h -= floorf(h);

    const float v = maxc;
    const float h6 = __fmul_rn(h, 6.0f);
    const float sector = floorf(h6);
    const float f = h6 - sector;
    const int i = ((int)sector) % 6;
    const float p = clamp01(v * (1.0f - s));
    const float q = clamp01(v * (1.0f - s * f));
    const float t = clamp01(v * (1.0f - s * (1.0f - f)));
    float nr, ng, nb;
    switch (i)
    {
    case 0: nr = v; ng = t; nb = p; break;
    case 1: nr = q; ng = v; nb = p; break;
    case 2: nr = p; ng = v; nb = t; break;
    case 3: nr = p; ng = q; nb = v; break;
    case 4: nr = t; ng = p; nb = v; break;
    default: nr = v; ng = p; nb = q; break;
    }
    r = clamp01(nr); g = clamp01(ng); b = clamp01(nb);
}

// Applies jitter transforms order[from..to) to one pixel; contrast uses the precomputed mean gray.
__device__ __forceinline__ void apply_ops(float& r, float& g, float& b, const AugmentDraw& d, const AugmentSpec& spec, int from, int to, float mean_gray)
{
    for (int k = from; k < to; k++)
    {
        const int op = d.op[k];
        if (op == OP_BRIGHTNESS && spec.brightness > 0.0f)
        {
            r = clamp01(d.brightness * r); g = clamp01(d.brightness * g); b = clamp01(d.brightness * b);
        }
        else if (op == OP_CONTRAST && spec.contrast > 0.0f)
        {
            const float offset = (1.0f - d.contrast) * mean_gray;
            r = clamp01(d.contrast * r + offset); g = clamp01(d.contrast * g + offset); b = clamp01(d.contrast * b + offset);
        }
        else if (op == OP_SATURATION && spec.saturation > 0.0f)
        {
            const float offset = (1.0f - d.saturation) * gray_of(r, g, b);
            r = clamp01(d.saturation * r + offset); g = clamp01(d.saturation * g + offset); b = clamp01(d.saturation * b + offset);
        }
        else if (op == OP_HUE && spec.hue > 0.0f)
        {
            hue_pixel(r, g, b, d.hue_shift);
        }
    }
}

// Reflect padding without repeating the edge, folded as often as needed for tiny sides.
__device__ __forceinline__ int reflect_index(int i, int n)
{
    if (n == 1) return 0;
    const int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

__device__ __forceinline__ int blur_radius(int side) { return max(1, (side + 5) / 10 / 2); }

// 2r + 1 Gaussian taps normalized to sum 1 (one thread).
__device__ void gaussian_taps(float* taps, int radius, float sigma)
{
    float sum = 0.0f;
    for (int i = -radius; i <= radius; i++)
    {
        const float z = __fdiv_rn((float)i, sigma);
        const float w = expf(__fmul_rn(__fmul_rn(-0.5f, z), z));
        taps[i + radius] = w;
        sum = __fadd_rn(sum, w);
    }
    for (int i = 0; i <= 2 * radius; i++) taps[i] = __fdiv_rn(taps[i], sum);
}

// Launch: grid = batch, block = a multiple of 32 threads, dynamic shared memory =
// (warps * max(out_height, out_width) + 2 * blur_radius(out_width) + 1 + 2 * blur_radius(out_height) + 1) floats.
extern "C" __global__ void augment_views(float* __restrict__ views, const unsigned char* __restrict__ images,
    const int* __restrict__ sample_indices, ImageSetShape set, AugmentSpec spec, u64 seed, int epoch, int view)
{
    AUGMENT_DYNAMIC_SHARED(smem);
    __shared__ AugmentDraw d;
    __shared__ double reduce_scratch[32];
    __shared__ float mean_gray;

    const int out_h = spec.out_height, out_w = spec.out_width;
    const int plane = out_h * out_w;
    const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int line_len = max(out_h, out_w);
    const int rx = blur_radius(out_w), ry = blur_radius(out_h);
    float* taps_x = smem + warps * line_len;
    float* taps_y = taps_x + 2 * rx + 1;

    float* out = views + (i64)blockIdx.x * 3 * plane;
    const int sample = sample_indices[blockIdx.x];
    if (sample < 0 || sample >= set.count)
    {
        const float nan = __int_as_float(0x7fc00000);
        for (int p = threadIdx.x; p < 3 * plane; p += blockDim.x) out[p] = nan;
        return;
    }

    if (threadIdx.x == 0)
    {
        draw_augment(d, spec, set.height, set.width, philox_key(seed), sample, epoch, view);
        if (d.blur)
        {
            gaussian_taps(taps_x, rx, d.sigma);
            gaussian_taps(taps_y, ry, d.sigma);
        }
    }
    __syncthreads();

    const int channels = set.channels;
    const unsigned char* image = images + (i64)sample * set.height * set.width * channels;
    const i64 row_stride = (i64)set.width * channels;

    int contrast_at = 4;
    if (d.jitter && spec.contrast > 0.0f)
        for (int k = 0; k < 4; k++)
            if (d.op[k] == OP_CONTRAST) contrast_at = k;
    const bool two_pass = contrast_at < 4;
    const int first_end = d.jitter ? contrast_at : 0;
    const float mean[3] = { spec.mean_r, spec.mean_g, spec.mean_b };
    const float stdv[3] = { spec.std_r, spec.std_g, spec.std_b };

    double gray_sum = 0.0;
    for (int p = threadIdx.x; p < plane; p += blockDim.x)
    {
        const int y = p / out_w, x = p - y * out_w;
        const int xs = d.flip ? out_w - 1 - x : x;
        int x0, x1, y0, y1;
        float fx, fy;
        sample_coordinate(xs, d.crop_width, out_w, x0, x1, fx);
        sample_coordinate(y, d.crop_height, out_h, y0, y1, fy);
        const unsigned char* row0 = image + (i64)(d.top + y0) * row_stride;
        const unsigned char* row1 = image + (i64)(d.top + y1) * row_stride;
        const int c0 = (d.left + x0) * channels, c1 = (d.left + x1) * channels;
        float rgb[3];
        for (int c = 0; c < 3; c++)
        {
            const int cc = channels == 1 ? 0 : c;
            rgb[c] = bilinear(unit_byte(row0[c0 + cc]), unit_byte(row0[c1 + cc]), unit_byte(row1[c0 + cc]), unit_byte(row1[c1 + cc]), fx, fy);
        }
        float r = rgb[0], g = rgb[1], b = rgb[2];
        apply_ops(r, g, b, d, spec, 0, first_end, 0.0f);
        if (two_pass)
        {
            gray_sum += (double)gray_of(r, g, b);
            out[p] = r; out[plane + p] = g; out[2 * plane + p] = b;
            continue;
        }
        if (d.grayscale) { const float yv = gray_of(r, g, b); r = yv; g = yv; b = yv; }
        if (d.blur) { out[p] = r; out[plane + p] = g; out[2 * plane + p] = b; }
        else
        {
            out[p] = __fdiv_rn(r - mean[0], stdv[0]);
            out[plane + p] = __fdiv_rn(g - mean[1], stdv[1]);
            out[2 * plane + p] = __fdiv_rn(b - mean[2], stdv[2]);
        }
    }

    if (two_pass)
    {
        const double total = block_reduce_sum<double>(gray_sum, reduce_scratch);
        if (threadIdx.x == 0) mean_gray = (float)(total / (double)plane);
        __syncthreads();
        const float m = mean_gray;
        for (int p = threadIdx.x; p < plane; p += blockDim.x)
        {
            float r = out[p], g = out[plane + p], b = out[2 * plane + p];
            apply_ops(r, g, b, d, spec, contrast_at, 4, m);
            if (d.grayscale) { const float yv = gray_of(r, g, b); r = yv; g = yv; b = yv; }
            if (d.blur) { out[p] = r; out[plane + p] = g; out[2 * plane + p] = b; }
            else
            {
                out[p] = __fdiv_rn(r - mean[0], stdv[0]);
                out[plane + p] = __fdiv_rn(g - mean[1], stdv[1]);
                out[2 * plane + p] = __fdiv_rn(b - mean[2], stdv[2]);
            }
        }
    }

    if (!d.blur) return;
    __syncthreads();

    // Horizontal pass: one row (of 3 * out_h) per warp at a time, staged in the warp's shared line.
    float* line = smem + warp * line_len;
    for (int row = warp; row < 3 * out_h; row += warps)
    {
        float* src = out + (i64)row * out_w;
        for (int x = lane; x < out_w; x += 32) line[x] = src[x];
        __syncwarp();
        for (int x = lane; x < out_w; x += 32)
        {
            float acc = 0.0f;
            for (int k = -rx; k <= rx; k++) acc += taps_x[k + rx] * line[reflect_index(x + k, out_w)];
            src[x] = acc;
        }
        __syncwarp();
    }
    __syncthreads();

    // Vertical pass: one column (of 3 * out_w) per warp, normalizing on the way out.
    for (int col = warp; col < 3 * out_w; col += warps)
    {
        const int c = col / out_w, x = col - c * out_w;
        float* base = out + (i64)c * plane + x;
        for (int y = lane; y < out_h; y += 32) line[y] = base[(i64)y * out_w];
        __syncwarp();
        for (int y = lane; y < out_h; y += 32)
        {
            float acc = 0.0f;
            for (int k = -ry; k <= ry; k++) acc += taps_y[k + ry] * line[reflect_index(y + k, out_h)];
            base[(i64)y * out_w] = __fdiv_rn(acc - mean[c], stdv[c]);
        }
        __syncwarp();
    }
}
