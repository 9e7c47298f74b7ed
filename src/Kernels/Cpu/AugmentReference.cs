// The definition of SimCLR's augmentation op, one image at a time: the random draws (a pure function of
// seed, epoch, sample index, view and a fixed Philox slot), and each transform as a small function on
// planar float RGB in [0, 1]. CpuBackend.AugmentViews runs this per image; kernels/augment.cu computes
// the same numbers in the same order, so the two agree to float rounding.
//
// Composition (torchvision semantics, SimCLR's order):
//   random resized crop + bilinear resize → horizontal flip → colour jitter (probability JitterProbability;
//   brightness, contrast, saturation, hue in a random permutation) → random grayscale → Gaussian blur →
//   (v − mean) / std.
//
// Philox slot table. Key = (low, high) words of Seed; counter = (sample index, Epoch, View, block).
// Each block gives four uint32 words (x, y, z, w); a uniform is u(x) = (x >> 8)·2⁻²⁴ ∈ [0, 1) and an
// integer in [0, n) is ((x >> 8)·n) >> 24 (exact in 64-bit integers, so no float rounding can differ).
//   block 0..9  crop attempt a:  x area fraction   y log-aspect   z top       w left
//   block 10    gates:           x flip            y jitter       z grayscale w blur       (apply iff u < p)
//   block 11    jitter factors:  x brightness      y contrast     z saturation w hue shift
//   block 12    order and sigma: x,y,z Fisher–Yates draws ⌊·4⌋, ⌊·3⌋, ⌊·2⌋ of the jitter order, w blur σ
// Blocks are drawn even when their decision is not taken, so one decision never shifts another.
//
// Exact definitions where torchvision leaves room:
//   crop     torchvision RandomResizedCrop.get_params, geometry in double: area = H·W·U(min, max),
//            aspect = exp(U(ln min, ln max)), w = round(√(area·aspect)), h = round(√(area/aspect)) with
//            round-half-even (Python's round), accepted when 0 < w ≤ W and 0 < h ≤ H; after 10 failures a
//            centre crop with the aspect clamped to [min, max].
//   resize   bilinear, half-pixel centres (align_corners = false): s = (d + ½)·(crop/out) − ½, clamped
//            below at 0; neighbours clamped to the crop's last row/column; no antialiasing.
//   jitter   factors U(max(0, 1 − s), 1 + s), hue shift U(−h, h); a transform whose strength is 0 is
//            skipped (torchvision passes None); gray = 0.299 R + 0.587 G + 0.114 B; brightness blends
//            with black, contrast with the mean gray of the whole view, saturation with the pixel's gray,
//            hue rotates H in HSV (torchvision's _rgb2hsv/_hsv2rgb); clamp to [0, 1] after each.
//   blur     σ = U(min, max), one σ for both axes; per axis radius r = max(1, ⌊(side + 5) / 10⌋ / 2), i.e.
//            10% of the side rounded half up and made odd (224 → 23 taps, 96 → 11, 32 → 3); taps
//            exp(−½(i/σ)²) for i ∈ [−r, r] normalized to sum 1; separable, horizontal then vertical,
//            reflect padding (mirror without repeating the edge).
using System.Runtime.CompilerServices;

namespace SimClr.Kernels.Cpu;

/// <summary>The order in which colour-jitter transforms can run (torchvision's fn_idx).</summary>
public enum JitterOp : byte { Brightness = 0, Contrast = 1, Saturation = 2, Hue = 3 }

/// <summary>Every random decision of one view of one image.</summary>
public struct AugmentDraw
{
    public int Top, Left, CropHeight, CropWidth;
    public bool Flip, Jitter, Grayscale, Blur;
    public float BrightnessFactor, ContrastFactor, SaturationFactor, HueShift, BlurSigma;
    public JitterOp Op0, Op1, Op2, Op3;

    public readonly JitterOp Op(int i) => i switch { 0 => Op0, 1 => Op1, 2 => Op2, _ => Op3 };
}

public static class AugmentReference
{
    public const int CropAttempts = 10;
    public const uint GateBlock = 10, FactorBlock = 11, OrderBlock = 12;
    public const float GrayR = 0.299f, GrayG = 0.587f, GrayB = 0.114f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Uniform(uint x) => Philox.ToUniformFloat(x);

    /// <summary>An integer in [0, n) from the top 24 bits of <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int UniformInt(uint x, int n) => (int)(((ulong)(x >> 8) * (ulong)n) >> 24);

    public static Philox4 Block(in AugmentKey key, int sampleIndex, uint block) =>
        Philox.Block(key.Seed, (uint)sampleIndex, (uint)key.Epoch, (uint)key.View, block);

    /// <summary>All decisions for one view of image <paramref name="sampleIndex"/> of a set of
    /// <paramref name="height"/>×<paramref name="width"/> images.</summary>
    public static AugmentDraw Draw(in AugmentSpec spec, int height, int width, in AugmentKey key, int sampleIndex)
    {
        var d = new AugmentDraw();
        DrawCrop(ref d, spec, height, width, key, sampleIndex);

        var gates = Block(key, sampleIndex, GateBlock);
        d.Flip = Uniform(gates.X) < spec.FlipProbability;
        d.Jitter = Uniform(gates.Y) < spec.JitterProbability;
        d.Grayscale = Uniform(gates.Z) < spec.GrayscaleProbability;
        d.Blur = Uniform(gates.W) < spec.BlurProbability;

        var f = Block(key, sampleIndex, FactorBlock);
        d.BrightnessFactor = Factor(spec.Brightness, Uniform(f.X));
        d.ContrastFactor = Factor(spec.Contrast, Uniform(f.Y));
        d.SaturationFactor = Factor(spec.Saturation, Uniform(f.Z));
        d.HueShift = -spec.Hue + Uniform(f.W) * (2f * spec.Hue);

        var o = Block(key, sampleIndex, OrderBlock);
        Span<JitterOp> order = [JitterOp.Brightness, JitterOp.Contrast, JitterOp.Saturation, JitterOp.Hue];
        Swap(order, 3, UniformInt(o.X, 4));
        Swap(order, 2, UniformInt(o.Y, 3));
        Swap(order, 1, UniformInt(o.Z, 2));
        (d.Op0, d.Op1, d.Op2, d.Op3) = (order[0], order[1], order[2], order[3]);
        d.BlurSigma = spec.BlurSigmaMin + Uniform(o.W) * (spec.BlurSigmaMax - spec.BlurSigmaMin);
        return d;

        static void Swap(Span<JitterOp> p, int i, int j) => (p[i], p[j]) = (p[j], p[i]);
    }

    private static float Factor(float strength, float u)
    {
        float lo = MathF.Max(0f, 1f - strength), hi = 1f + strength;
        return lo + u * (hi - lo);
    }

    private static void DrawCrop(ref AugmentDraw d, in AugmentSpec spec, int height, int width, in AugmentKey key, int sampleIndex)
    {
        double area = (double)height * width;
        double logMin = Math.Log(spec.AspectMin), logMax = Math.Log(spec.AspectMax);
        for (uint attempt = 0; attempt < CropAttempts; attempt++)
        {
            var b = Block(key, sampleIndex, attempt);
            double target = area * (spec.CropAreaMin + (double)Uniform(b.X) * (spec.CropAreaMax - spec.CropAreaMin));
            double aspect = Math.Exp(logMin + (double)Uniform(b.Y) * (logMax - logMin));
            int w = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                d.Top = UniformInt(b.Z, height - h + 1);
                d.Left = UniformInt(b.W, width - w + 1);
                d.CropHeight = h;
                d.CropWidth = w;
                return;
            }
        }
        double inRatio = (double)width / height;
        int cw = width, ch = height;
        if (inRatio < spec.AspectMin) ch = (int)Math.Round(cw / (double)spec.AspectMin, MidpointRounding.ToEven);
        else if (inRatio > spec.AspectMax) cw = (int)Math.Round(ch * (double)spec.AspectMax, MidpointRounding.ToEven);
        ch = Math.Clamp(ch, 1, height);
        cw = Math.Clamp(cw, 1, width);
        d.CropHeight = ch;
        d.CropWidth = cw;
        d.Top = (height - ch) / 2;
        d.Left = (width - cw) / 2;
    }

    /// <summary>Where output coordinate <paramref name="o"/> samples a crop of <paramref name="crop"/>
    /// pixels resized to <paramref name="output"/>: the two neighbours and the weight of the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SampleCoordinate(int o, int crop, int output, out int i0, out int i1, out float frac)
    {
        float scale = (float)crop / output;
        float s = (o + 0.5f) * scale - 0.5f;
        if (s < 0f) s = 0f;
        i0 = (int)s;
        if (i0 > crop - 1) i0 = crop - 1;
        i1 = i0 + 1 < crop ? i0 + 1 : crop - 1;
        frac = s - i0;
    }

    /// <summary>Crop + bilinear resize + flip of one HWC uint8 image into planar r, g, b (each outH·outW).</summary>
    public static void CropResizeFlip(Span<float> r, Span<float> g, Span<float> b, ReadOnlySpan<byte> image, int width, int channels,
        in AugmentDraw d, int outH, int outW)
    {
        Span<int> x0s = outW <= 1024 ? stackalloc int[outW] : new int[outW];
        Span<int> x1s = outW <= 1024 ? stackalloc int[outW] : new int[outW];
        Span<float> fxs = outW <= 1024 ? stackalloc float[outW] : new float[outW];
        for (int x = 0; x < outW; x++)
        {
            int xs = d.Flip ? outW - 1 - x : x;
            SampleCoordinate(xs, d.CropWidth, outW, out int a0, out int a1, out fxs[x]);
            x0s[x] = (d.Left + a0) * channels;
            x1s[x] = (d.Left + a1) * channels;
        }
        ReadOnlySpan<float> lut = ByteToUnit;
        for (int y = 0; y < outH; y++)
        {
            SampleCoordinate(y, d.CropHeight, outH, out int y0, out int y1, out float fy);
            int row0 = (d.Top + y0) * width * channels, row1 = (d.Top + y1) * width * channels;
            int o = y * outW;
            for (int x = 0; x < outW; x++)
            {
                float fx = fxs[x];
                int p00 = row0 + x0s[x], p01 = row0 + x1s[x], p10 = row1 + x0s[x], p11 = row1 + x1s[x];
                if (channels == 1)
                {
                    float v = Bilinear(lut[image[p00]], lut[image[p01]], lut[image[p10]], lut[image[p11]], fx, fy);
                    r[o + x] = v; g[o + x] = v; b[o + x] = v;
                }
                else
                {
                    r[o + x] = Bilinear(lut[image[p00]], lut[image[p01]], lut[image[p10]], lut[image[p11]], fx, fy);
                    g[o + x] = Bilinear(lut[image[p00 + 1]], lut[image[p01 + 1]], lut[image[p10 + 1]], lut[image[p11 + 1]], fx, fy);
                    b[o + x] = Bilinear(lut[image[p00 + 2]], lut[image[p01 + 2]], lut[image[p10 + 2]], lut[image[p11 + 2]], fx, fy);
                }
            }
        }
    }

    /// <summary>Bilinear blend written so that a zero weight returns the neighbour exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bilinear(float v00, float v01, float v10, float v11, float fx, float fy)
    {
        float top = v00 * (1f - fx) + v01 * fx;
        float bottom = v10 * (1f - fx) + v11 * fx;
        return top * (1f - fy) + bottom * fy;
    }

    /// <summary>b / 255 for every byte value, computed by IEEE division as the kernel does.</summary>
    private static readonly float[] ByteToUnit = BuildByteTable();

    private static float[] BuildByteTable()
    {
        var t = new float[256];
        for (int i = 0; i < 256; i++) t[i] = i / 255f;
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Clamp01(float v) => v < 0f ? 0f : v > 1f ? 1f : v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Gray(float r, float g, float b) => GrayR * r + GrayG * g + GrayB * b;

    public static void Brightness(Span<float> r, Span<float> g, Span<float> b, float factor)
    {
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = Clamp01(factor * r[i]);
            g[i] = Clamp01(factor * g[i]);
            b[i] = Clamp01(factor * b[i]);
        }
    }

    /// <summary>The mean gray of the whole view, accumulated in double (the kernel's block sum is in double too).</summary>
    public static float MeanGray(ReadOnlySpan<float> r, ReadOnlySpan<float> g, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < r.Length; i++) sum += Gray(r[i], g[i], b[i]);
        return (float)(sum / r.Length);
    }

    public static void Contrast(Span<float> r, Span<float> g, Span<float> b, float factor)
    {
        float mean = MeanGray(r, g, b);
        float offset = (1f - factor) * mean;
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = Clamp01(factor * r[i] + offset);
            g[i] = Clamp01(factor * g[i] + offset);
            b[i] = Clamp01(factor * b[i] + offset);
        }
    }

    public static void Saturation(Span<float> r, Span<float> g, Span<float> b, float factor)
    {
        for (int i = 0; i < r.Length; i++)
        {
            float offset = (1f - factor) * Gray(r[i], g[i], b[i]);
            r[i] = Clamp01(factor * r[i] + offset);
            g[i] = Clamp01(factor * g[i] + offset);
            b[i] = Clamp01(factor * b[i] + offset);
        }
    }

    public static void Hue(Span<float> r, Span<float> g, Span<float> b, float shift)
    {
        for (int i = 0; i < r.Length; i++) HuePixel(ref r[i], ref g[i], ref b[i], shift);
    }

    /// <summary>RGB → HSV (torchvision's _rgb2hsv), H ← (H + shift) mod 1, HSV → RGB (_hsv2rgb).</summary>
    public static void HuePixel(ref float r, ref float g, ref float b, float shift)
    {
        float maxc = MathF.Max(r, MathF.Max(g, b));
        float minc = MathF.Min(r, MathF.Min(g, b));
        bool eqc = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1f : maxc);
        float divisor = eqc ? 1f : cr;
        float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
        float h;
        if (maxc == r) h = bc - gc;
        else if (maxc == g) h = 2f + rc - bc;
        else h = 4f + gc - rc;
        h = h / 6f + 1f;
        h -= MathF.Floor(h);
        h += shift;
        h -= MathF.Floor(h);

        float v = maxc;
        float h6 = h * 6f;
        float sector = MathF.Floor(h6);
        float f = h6 - sector;
        int i = (int)sector % 6;
        float p = Clamp01(v * (1f - s));
        float q = Clamp01(v * (1f - s * f));
        float t = Clamp01(v * (1f - s * (1f - f)));
        (r, g, b) = i switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        r = Clamp01(r); g = Clamp01(g); b = Clamp01(b);
    }

    public static void Grayscale(Span<float> r, Span<float> g, Span<float> b)
    {
        for (int i = 0; i < r.Length; i++)
        {
            float y = Gray(r[i], g[i], b[i]);
            r[i] = y; g[i] = y; b[i] = y;
        }
    }

    /// <summary>The blur radius along an output side of <paramref name="side"/> pixels.</summary>
    public static int BlurRadius(int side) => Math.Max(1, (side + 5) / 10 / 2);

    /// <summary>2r + 1 Gaussian taps for σ, normalized to sum 1.</summary>
    public static void GaussianKernel(Span<float> taps, int radius, float sigma)
    {
        float sum = 0f;
        for (int i = -radius; i <= radius; i++)
        {
            float z = i / sigma;
            float w = MathF.Exp(-0.5f * z * z);
            taps[i + radius] = w;
            sum += w;
        }
        for (int i = 0; i < taps.Length; i++) taps[i] /= sum;
    }

    /// <summary>Reflect padding without repeating the edge, folded as often as needed for tiny sides.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }

    /// <summary>Separable Gaussian blur of one h×w plane in place; <paramref name="line"/> holds
    /// max(h, w) + 2·max(radius) floats (a reflect-padded copy of one row or column).</summary>
    public static void BlurPlane(Span<float> plane, int h, int w, ReadOnlySpan<float> tapsX, ReadOnlySpan<float> tapsY, Span<float> line)
    {
        int rx = tapsX.Length / 2, ry = tapsY.Length / 2;
        for (int y = 0; y < h; y++)
        {
            var row = plane.Slice(y * w, w);
            for (int i = -rx; i < w + rx; i++) line[i + rx] = row[Reflect(i, w)];
            for (int x = 0; x < w; x++)
            {
                float acc = 0f;
                for (int k = 0; k < tapsX.Length; k++) acc += tapsX[k] * line[x + k];
                row[x] = acc;
            }
        }
        for (int x = 0; x < w; x++)
        {
            for (int i = -ry; i < h + ry; i++) line[i + ry] = plane[Reflect(i, h) * w + x];
            for (int y = 0; y < h; y++)
            {
                float acc = 0f;
                for (int k = 0; k < tapsY.Length; k++) acc += tapsY[k] * line[y + k];
                plane[y * w + x] = acc;
            }
        }
    }

    /// <summary>Floats of scratch that <see cref="Augment"/> needs for a view of outH×outW.</summary>
    public static int ScratchLength(int outH, int outW) =>
        Math.Max(outH, outW) + 2 * Math.Max(BlurRadius(outH), BlurRadius(outW));

    /// <summary>One whole view into planar r, g, b (unnormalized, [0, 1]); scratch holds <see cref="ScratchLength"/> floats.</summary>
    public static void Augment(Span<float> r, Span<float> g, Span<float> b, Span<float> scratch, ReadOnlySpan<byte> image,
        int width, int channels, in AugmentSpec spec, in AugmentDraw d)
    {
        int outH = spec.OutHeight, outW = spec.OutWidth;
        CropResizeFlip(r, g, b, image, width, channels, d, outH, outW);
        if (d.Jitter)
        {
            for (int k = 0; k < 4; k++)
            {
                switch (d.Op(k))
                {
                    case JitterOp.Brightness when spec.Brightness > 0: Brightness(r, g, b, d.BrightnessFactor); break;
                    case JitterOp.Contrast when spec.Contrast > 0: Contrast(r, g, b, d.ContrastFactor); break;
                    case JitterOp.Saturation when spec.Saturation > 0: Saturation(r, g, b, d.SaturationFactor); break;
                    case JitterOp.Hue when spec.Hue > 0: Hue(r, g, b, d.HueShift); break;
                }
            }
        }
        if (d.Grayscale) Grayscale(r, g, b);
        if (d.Blur)
        {
            int rx = BlurRadius(outW), ry = BlurRadius(outH);
            Span<float> tapsX = stackalloc float[2 * rx + 1];
            Span<float> tapsY = stackalloc float[2 * ry + 1];
            GaussianKernel(tapsX, rx, d.BlurSigma);
            GaussianKernel(tapsY, ry, d.BlurSigma);
            BlurPlane(r, outH, outW, tapsX, tapsY, scratch);
            BlurPlane(g, outH, outW, tapsX, tapsY, scratch);
            BlurPlane(b, outH, outW, tapsX, tapsY, scratch);
        }
    }
}
