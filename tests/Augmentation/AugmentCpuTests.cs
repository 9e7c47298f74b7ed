// The CPU twin of AugmentViews against formulas computed here independently: identity, flip, grayscale,
// the torchvision colour-jitter formulas, hue rotation, blur, crop statistics, determinism and shapes.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Augmentation.AugmentHarness;

namespace SimClr.Tests.Augmentation;

public class AugmentCpuTests
{
    private static readonly CpuBackend<float> Cpu = new();

    [Fact]
    public void SameKeyReproducesAndEveryKeyPartChangesTheViews()
    {
        var set = new ImageSetShape(6, 32, 32, 3);
        var images = RandomImages(set, 1);
        int[] idx = [0, 1, 2, 3, 4, 5];
        var spec = AugmentSpec.Paper(24);
        var key = new AugmentKey(42, 3, 0);
        var a = Run(Cpu, images, set, idx, spec, key);
        Assert.Equal(a, Run(Cpu, images, set, idx, spec, key));
        foreach (var other in new[] { key with { Seed = 43 }, key with { Epoch = 4 }, key with { View = 1 } })
            AssertMostlyDifferent(a, Run(Cpu, images, set, idx, spec, other));

        // Same image at two batch positions but different sample indices: the draws follow the sample index.
        var twin = new ImageSetShape(2, 32, 32, 3);
        var two = new byte[twin.Elements];
        images.AsSpan(0, 3072).CopyTo(two);
        images.AsSpan(0, 3072).CopyTo(two.AsSpan(3072));
        var v = Run(Cpu, two, twin, [0, 1], spec, key);
        int n = 3 * 24 * 24;
        AssertMostlyDifferent(v[..n], v[n..]);
        var same = Run(Cpu, two, twin, [1, 1], spec, key);
        Assert.Equal(same[..n], same[n..]);
    }

    private static void AssertMostlyDifferent(float[] a, float[] b)
    {
        int differ = 0;
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) differ++;
        Assert.True(differ > a.Length / 2, $"only {differ} of {a.Length} values differ");
    }

    [Theory]
    [InlineData(8, 8, 3)]
    [InlineData(5, 7, 3)]
    [InlineData(9, 6, 1)]
    public void IdentitySpecReproducesTheNormalizedImageExactly(int h, int w, int channels)
    {
        var set = new ImageSetShape(3, h, w, channels);
        var images = RandomImages(set, h * w);
        var spec = Identity(h, w);
        var views = Run(Cpu, images, set, [2, 0], spec, new AugmentKey(5, 0, 0));
        int[] order = [2, 0];
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        byte px = images[((order[b] * h + y) * w + x) * channels + (channels == 1 ? 0 : c)];
                        Assert.Equal(Normalized(px / 255f, c, spec), views[((b * 3 + c) * h + y) * w + x]);
                    }
    }

    [Fact]
    public void FlipIsAnExactMirror()
    {
        var set = new ImageSetShape(4, 12, 10, 3);
        var images = RandomImages(set, 2);
        var spec = AugmentSpec.Paper(9) with { OutHeight = 9, OutWidth = 11, JitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0, FlipProbability = 0 };
        var key = new AugmentKey(9, 1, 1);
        int[] idx = [0, 1, 2, 3];
        var plain = Run(Cpu, images, set, idx, spec, key);
        var flipped = Run(Cpu, images, set, idx, spec with { FlipProbability = 1 }, key);
        for (int p = 0; p < 4 * 3 * 9; p++)
            for (int x = 0; x < 11; x++)
                Assert.Equal(plain[p * 11 + x], flipped[p * 11 + 10 - x]);
    }

    [Fact]
    public void GrayscaleGivesThreeEqualChannelsOfTheLumaFormula()
    {
        var set = new ImageSetShape(2, 6, 6, 3);
        var images = RandomImages(set, 3);
        var spec = Identity(6, 6) with { GrayscaleProbability = 1 };
        var views = Run(Cpu, images, set, [0, 1], spec, new AugmentKey(1, 0, 0));
        for (int b = 0; b < 2; b++)
            for (int p = 0; p < 36; p++)
            {
                double r = images[(b * 36 + p) * 3] / 255.0, g = images[(b * 36 + p) * 3 + 1] / 255.0, bl = images[(b * 36 + p) * 3 + 2] / 255.0;
                double gray = 0.299 * r + 0.587 * g + 0.114 * bl;
                for (int c = 0; c < 3; c++)
                    Assert.Equal(Normalized((float)gray, c, spec), views[(b * 3 + c) * 36 + p], 1e-5f);
            }
    }

    private static (float[] R, float[] G, float[] B) RandomPlanes(int n, int seed)
    {
        var rng = new Random(seed);
        float[] r = new float[n], g = new float[n], b = new float[n];
        for (int i = 0; i < n; i++) { r[i] = rng.NextSingle(); g[i] = rng.NextSingle(); b[i] = rng.NextSingle(); }
        return (r, g, b);
    }

    private static double Clamp(double v) => Math.Clamp(v, 0, 1);

    [Theory]
    [InlineData(0.3)]
    [InlineData(1.7)]
    public void BrightnessContrastSaturationFollowTorchvisionBlends(double factor)
    {
        const int n = 200;
        var (r0, g0, b0) = RandomPlanes(n, 4);
        float f = (float)factor;

        var (r, g, b) = (r0.ToArray(), g0.ToArray(), b0.ToArray());
        AugmentReference.Brightness(r, g, b, f);
        for (int i = 0; i < n; i++) Assert.Equal(Clamp(factor * r0[i]), r[i], 1e-6);

        (r, g, b) = (r0.ToArray(), g0.ToArray(), b0.ToArray());
        AugmentReference.Contrast(r, g, b, f);
        double mean = 0;
        for (int i = 0; i < n; i++) mean += 0.299 * r0[i] + 0.587 * g0[i] + 0.114 * b0[i];
        mean /= n;
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(Clamp(factor * r0[i] + (1 - factor) * mean), r[i], 1e-6);
            Assert.Equal(Clamp(factor * b0[i] + (1 - factor) * mean), b[i], 1e-6);
        }

        (r, g, b) = (r0.ToArray(), g0.ToArray(), b0.ToArray());
        AugmentReference.Saturation(r, g, b, f);
        for (int i = 0; i < n; i++)
        {
            double gray = 0.299 * r0[i] + 0.587 * g0[i] + 0.114 * b0[i];
            Assert.Equal(Clamp(factor * g0[i] + (1 - factor) * gray), g[i], 1e-6);
        }
    }

    [Fact]
    public void BrightnessOnlyJitterUsesItsDrawnFactorInTheRange()
    {
        var set = new ImageSetShape(8, 6, 6, 3);
        var images = RandomImages(set, 5);
        var spec = Identity(6, 6) with { JitterProbability = 1, Brightness = 0.4f, Contrast = 0, Saturation = 0, Hue = 0 };
        var key = new AugmentKey(77, 2, 0);
        int[] idx = [0, 1, 2, 3, 4, 5, 6, 7];
        var views = Run(Cpu, images, set, idx, spec, key);
        var factors = new HashSet<float>();
        for (int b = 0; b < 8; b++)
        {
            float f = AugmentReference.Draw(spec, 6, 6, key, b).BrightnessFactor;
            Assert.InRange(f, 0.6f, 1.4f);
            factors.Add(f);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 36; p++)
                {
                    double v = Clamp(f * (images[(b * 36 + p) * 3 + c] / 255.0));
                    Assert.Equal(v, Denormalized(views[(b * 3 + c) * 36 + p], c, spec), 1e-5);
                }
        }
        Assert.Equal(8, factors.Count);
    }

    [Fact]
    public void HueShiftOfZeroIsTheIdentityAndAThirdTurnsRedToGreenToBlue()
    {
        var (r0, g0, b0) = RandomPlanes(500, 6);
        for (int i = 0; i < r0.Length; i++)
        {
            float r = r0[i], g = g0[i], b = b0[i];
            AugmentReference.HuePixel(ref r, ref g, ref b, 0f);
            Assert.Equal(r0[i], r, 1e-5f);
            Assert.Equal(g0[i], g, 1e-5f);
            Assert.Equal(b0[i], b, 1e-5f);
        }
        float rr = 1, gg = 0, bb = 0;
        AugmentReference.HuePixel(ref rr, ref gg, ref bb, 1f / 3f);
        Assert.Equal((0f, 1f, 0f), (MathF.Round(rr, 5), MathF.Round(gg, 5), MathF.Round(bb, 5)));
        AugmentReference.HuePixel(ref rr, ref gg, ref bb, 1f / 3f);
        Assert.Equal((0f, 0f, 1f), (MathF.Round(rr, 5), MathF.Round(gg, 5), MathF.Round(bb, 5)));
        AugmentReference.HuePixel(ref rr, ref gg, ref bb, -2f / 3f);
        Assert.Equal((1f, 0f, 0f), (MathF.Round(rr, 5), MathF.Round(gg, 5), MathF.Round(bb, 5)));
    }

    [Fact]
    public void HueRotationMatchesATextbookHsvRoundTrip()
    {
        var (r0, g0, b0) = RandomPlanes(500, 7);
        var rng = new Random(8);
        for (int i = 0; i < r0.Length; i++)
        {
            double shift = rng.NextDouble() - 0.5;
            var (er, eg, eb) = TextbookHueShift(r0[i], g0[i], b0[i], shift);
            float r = r0[i], g = g0[i], b = b0[i];
            AugmentReference.HuePixel(ref r, ref g, ref b, (float)shift);
            Assert.Equal(er, r, 1e-5);
            Assert.Equal(eg, g, 1e-5);
            Assert.Equal(eb, b, 1e-5);
        }
    }

    // Hue in degrees from the max channel, then the chroma/X construction (Smith 1978), in double.
    private static (double, double, double) TextbookHueShift(double r, double g, double b, double shift)
    {
        double max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b)), c = max - min;
        double h = c == 0 ? 0 : max == r ? 60 * (((g - b) / c) % 6) : max == g ? 60 * ((b - r) / c + 2) : 60 * ((r - g) / c + 4);
        h = ((h + 360 * shift) % 360 + 360) % 360;
        double x = c * (1 - Math.Abs(h / 60 % 2 - 1)), m = max - c;
        var (r1, g1, b1) = (int)(h / 60) switch
        {
            0 => (c, x, 0.0), 1 => (x, c, 0.0), 2 => (0.0, c, x), 3 => (0.0, x, c), 4 => (x, 0.0, c), _ => (c, 0.0, x),
        };
        return (r1 + m, g1 + m, b1 + m);
    }

    [Theory]
    [InlineData(0.1f)]
    [InlineData(1.3f)]
    [InlineData(5f)]
    public void GaussianKernelIsSymmetricPeakedAndSumsToOne(float sigma)
    {
        var taps = new float[2 * 4 + 1];
        AugmentReference.GaussianKernel(taps, 4, sigma);
        Assert.Equal(1.0, taps.Sum(t => (double)t), 1e-6);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(taps[i], taps[8 - i]);
            Assert.True(taps[i] <= taps[i + 1]);
            Assert.Equal(Math.Exp(-0.5 * Math.Pow((i - 4) / (double)sigma, 2)) / Enumerable.Range(-4, 9).Sum(k => Math.Exp(-0.5 * Math.Pow(k / (double)sigma, 2))), taps[i], 1e-6);
        }
    }

    [Fact]
    public void BlurRadiusIsTenPercentOfTheSideMadeOdd()
    {
        Assert.Equal(11, AugmentReference.BlurRadius(224));
        Assert.Equal(5, AugmentReference.BlurRadius(96));
        Assert.Equal(1, AugmentReference.BlurRadius(32));
        Assert.Equal(1, AugmentReference.BlurRadius(5));
    }

    [Fact]
    public void BlurOfAnImpulseIsTheOuterProductOfTheTapsWithReflectedEdges()
    {
        const int h = 7, w = 9;
        var tx = new float[5];
        var ty = new float[3];
        AugmentReference.GaussianKernel(tx, 2, 1.1f);
        AugmentReference.GaussianKernel(ty, 1, 0.7f);
        var plane = new float[h * w];
        plane[3 * w + 1] = 1; // next to the left edge: the mirror folds x = -1 onto x = 1 for outputs 0 and 1
        AugmentReference.BlurPlane(plane, h, w, tx, ty, new float[32]);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double wx = x switch { 0 => tx[1] + tx[3], 1 => tx[2] + tx[0], 2 => tx[1], 3 => tx[0], _ => 0 };
                double wy = Math.Abs(y - 3) <= 1 ? ty[y - 3 + 1] : 0;
                Assert.Equal(wx * wy, plane[y * w + x], 1e-6);
            }
        Assert.Equal(1, AugmentReference.Reflect(-1, 5));
        Assert.Equal(3, AugmentReference.Reflect(5, 5));
        Assert.Equal(0, AugmentReference.Reflect(8, 5));
        Assert.Equal(0, AugmentReference.Reflect(3, 1));
    }

    [Fact]
    public void BlurPreservesAConstantImage()
    {
        var set = new ImageSetShape(3, 20, 20, 3);
        var images = new byte[set.Elements];
        for (int i = 0; i < images.Length; i++) images[i] = (byte)(i % 3 == 0 ? 200 : i % 3 == 1 ? 90 : 17);
        var spec = AugmentSpec.Paper(20) with { BlurProbability = 1, BlurSigmaMin = 0.5f, BlurSigmaMax = 3f, JitterProbability = 0, GrayscaleProbability = 0 };
        var views = Run(Cpu, images, set, [0, 1, 2], spec, new AugmentKey(3, 0, 0));
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
            {
                float expected = Normalized((c == 0 ? 200 : c == 1 ? 90 : 17) / 255f, c, spec);
                for (int p = 0; p < 400; p++) Assert.Equal(expected, views[(b * 3 + c) * 400 + p], 1e-5f);
            }
    }

    [Fact]
    public void CropAreaFractionMatchesAnIndependentSimulationOfTorchvisionsSampler()
    {
        var spec = AugmentSpec.Paper(32);
        const int n = 20000, h = 32, w = 32;
        double ours = 0;
        for (int i = 0; i < n; i++)
        {
            var d = AugmentReference.Draw(spec, h, w, new AugmentKey(11, 0, 0), i);
            Assert.InRange(d.Top, 0, h - d.CropHeight);
            Assert.InRange(d.Left, 0, w - d.CropWidth);
            ours += (double)d.CropHeight * d.CropWidth / (h * w);
        }
        ours /= n;

        var rng = new Random(12);
        double reference = 0;
        for (int i = 0; i < n; i++)
        {
            int ch = h, cw = w;
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double area = h * w * (0.08 + rng.NextDouble() * 0.92);
                double aspect = Math.Exp(Math.Log(3.0 / 4) + rng.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)));
                int cwi = (int)Math.Round(Math.Sqrt(area * aspect)), chi = (int)Math.Round(Math.Sqrt(area / aspect));
                if (cwi > 0 && cwi <= w && chi > 0 && chi <= h) { (ch, cw) = (chi, cwi); break; }
            }
            reference += (double)ch * cw / (h * w);
        }
        reference /= n;
        Assert.InRange(ours, reference - 0.012, reference + 0.012);
        Assert.InRange(ours, 0.4, 0.6);
    }

    [Fact]
    public void GatesFireAtTheirProbabilitiesAndTheJitterOrderIsUniform()
    {
        var spec = AugmentSpec.Paper(32) with { FlipProbability = 0.5f, JitterProbability = 0.8f, GrayscaleProbability = 0.2f, BlurProbability = 0.3f };
        const int n = 24000;
        int flips = 0, jitters = 0, grays = 0, blurs = 0;
        var orders = new Dictionary<int, int>();
        for (int i = 0; i < n; i++)
        {
            var d = AugmentReference.Draw(spec, 32, 32, new AugmentKey(13, 1, 0), i);
            flips += d.Flip ? 1 : 0; jitters += d.Jitter ? 1 : 0; grays += d.Grayscale ? 1 : 0; blurs += d.Blur ? 1 : 0;
            int code = (int)d.Op0 * 64 + (int)d.Op1 * 16 + (int)d.Op2 * 4 + (int)d.Op3;
            Assert.Equal(new[] { 0, 1, 2, 3 }, new[] { (int)d.Op0, (int)d.Op1, (int)d.Op2, (int)d.Op3 }.Order());
            orders[code] = orders.GetValueOrDefault(code) + 1;
            Assert.InRange(d.BlurSigma, spec.BlurSigmaMin, spec.BlurSigmaMax);
            Assert.InRange(d.HueShift, -spec.Hue, spec.Hue);
        }
        Assert.InRange(flips / (double)n, 0.48, 0.52);
        Assert.InRange(jitters / (double)n, 0.78, 0.82);
        Assert.InRange(grays / (double)n, 0.18, 0.22);
        Assert.InRange(blurs / (double)n, 0.28, 0.32);
        Assert.Equal(24, orders.Count);
        Assert.All(orders.Values, c => Assert.InRange(c, 1000 - 150, 1000 + 150));
    }

    [Theory]
    [InlineData(3, 5, 7, 9, 11)]
    [InlineData(1, 5, 7, 9, 11)]
    [InlineData(3, 32, 32, 32, 32)]
    [InlineData(1, 28, 28, 24, 24)]
    public void FullSpecGivesFiniteViewsInRangeForAnySizes(int channels, int h, int w, int outH, int outW)
    {
        var set = new ImageSetShape(5, h, w, channels);
        var images = RandomImages(set, channels * h);
        var spec = AugmentSpec.Paper(outH) with { OutWidth = outW, BlurProbability = 0.7f };
        var views = Run(Cpu, images, set, [4, 3, 2, 1, 0, 4], spec, new AugmentKey(1, 0, 1));
        Assert.Equal(6 * 3 * outH * outW, views.Length);
        for (int i = 0; i < views.Length; i++)
        {
            int c = i / (outH * outW) % 3;
            float v = Denormalized(views[i], c, spec);
            Assert.True(float.IsFinite(views[i]));
            Assert.InRange(v, -1e-5f, 1 + 1e-5f);
        }
    }

    [Fact]
    public void DoubleViewsHoldTheFloatPixelsConverted()
    {
        var set = new ImageSetShape(3, 16, 16, 3);
        var images = RandomImages(set, 9);
        var spec = AugmentSpec.Paper(12);
        var key = new AugmentKey(21, 2, 1);
        var f = Run(Cpu, images, set, [0, 1, 2], spec, key);
        using var cpuDouble = new CpuBackend<double>();
        var d = Run(cpuDouble, images, set, [0, 1, 2], spec, key);
        Assert.Equal(f.Select(v => (double)v), d);
    }

    [Fact]
    public void BadArgumentsAreRefusedWithAMessage()
    {
        var set = new ImageSetShape(2, 8, 8, 3);
        var images = RandomImages(set, 10);
        var spec = AugmentSpec.Cifar(8);
        var e = Assert.ThrowsAny<ArgumentException>(() => Run(Cpu, images, set, [0, 2], spec, default));
        Assert.Contains("sample index 2", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => Run(Cpu, new byte[2 * 8 * 8 * 4], set with { Channels = 4 }, [0], spec, default));
        Assert.Contains("4 channels", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => Run(Cpu, images, set, [0], spec with { CropAreaMin = 0 }, default));
        Assert.Contains("crop area", e.Message);
    }

    [Fact]
    public void AugmentSpecLayoutIsTheKernelAbi()
    {
        Assert.Equal(88, Unsafe.SizeOf<AugmentSpec>());
        Assert.Equal(16, Unsafe.SizeOf<ImageSetShape>());
        var spec = new AugmentSpec
        {
            OutHeight = 1, OutWidth = 2, CropAreaMin = 3, CropAreaMax = 4, AspectMin = 5, AspectMax = 6, FlipProbability = 7, JitterProbability = 8,
            Brightness = 9, Contrast = 10, Saturation = 11, Hue = 12, GrayscaleProbability = 13, BlurProbability = 14, BlurSigmaMin = 15, BlurSigmaMax = 16,
            MeanR = 17, MeanG = 18, MeanB = 19, StdR = 20, StdG = 21, StdB = 22,
        };
        var words = MemoryMarshal.Cast<AugmentSpec, float>(MemoryMarshal.CreateReadOnlySpan(ref spec, 1));
        Assert.Equal(1, BitConverter.SingleToInt32Bits(words[0]));
        Assert.Equal(2, BitConverter.SingleToInt32Bits(words[1]));
        for (int i = 2; i < 22; i++) Assert.Equal(i + 1, words[i]);
    }
}
