// Pooling on the CPU reference backend: max pooling against a naive window scan written here,
// its backward against finite differences (no ties) and the first-maximum rule (with ties), padding
// that never wins, global average pooling forward and backward.
using SimClr.Kernels;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class PoolTests
{
    private static double[] NaiveMaxPool(double[] x, PoolShape s)
    {
        var y = new double[s.Batch * s.Channels * s.OutHeight * s.OutWidth];
        for (int p = 0; p < s.Batch * s.Channels; p++)
        for (int i = 0; i < s.OutHeight; i++)
        for (int j = 0; j < s.OutWidth; j++)
        {
            double best = double.NegativeInfinity;
            for (int a = 0; a < s.Window; a++)
            for (int b = 0; b < s.Window; b++)
            {
                int ih = i * s.Stride - s.Pad + a, iw = j * s.Stride - s.Pad + b;
                if (ih >= 0 && ih < s.InHeight && iw >= 0 && iw < s.InWidth) best = Math.Max(best, x[(p * s.InHeight + ih) * s.InWidth + iw]);
            }
            y[(p * s.OutHeight + i) * s.OutWidth + j] = best;
        }
        return y;
    }

    /// <summary>Distinct values (a shuffled ramp) so no window has a tie and the max is differentiable.</summary>
    private static double[] DistinctValues(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(i => (i - count / 2) * 0.01).OrderBy(_ => rng.Next()).ToArray();
    }

    public static TheoryData<int, int, int, int, int, int, int> Shapes => new()
    {
        { 3, 5, 5, 7, 3, 2, 1 },
        { 2, 3, 7, 5, 2, 2, 0 },
        { 2, 6, 6, 6, 3, 1, 1 },
        { 1, 3, 9, 7, 3, 3, 0 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MaxPoolMatchesNaiveScanAndFiniteDifferences(int batch, int channels, int h, int w, int window, int stride, int pad)
    {
        var s = new PoolShape(batch, channels, h, w, window, stride, pad);
        int inCount = batch * channels * h * w, outCount = batch * channels * s.OutHeight * s.OutWidth;
        // All values negative: a padded zero would win if padding were taken as a candidate.
        var xv = DistinctValues(inCount, 1).Select(v => v - 10).ToArray();
        var x = Tensor(xv);
        var y = Filled(outCount, double.NaN);
        Backend.MaxPoolForward(y, x, s);
        AssertClose(Read(y), NaiveMaxPool(xv, s), "max pool forward", 0);

        var r = Random(outCount, 2);
        double Loss() { Backend.MaxPoolForward(y, x, s); return Dot(y, r); }
        Loss();
        var dx = Filled(inCount, double.NaN);
        Backend.MaxPoolBackward(dx, Tensor(r), y, x, s);
        Check(Loss, x, Read(dx), "max pool dx", h: 1e-4);
    }

    [Fact]
    public void TiesSendTheGradientToTheFirstMaximumInRowMajorOrder()
    {
        // One 3×3 window over a 3×3 plane holding the maximum 5 at (0,2), (1,0) and (2,2).
        var s = new PoolShape(1, 1, 3, 3, Window: 3, Stride: 1, Pad: 0);
        var x = Tensor(new double[] { 1, 0, 5, 5, 2, 3, 4, 0, 5 });
        var y = Zeros(1);
        Backend.MaxPoolForward(y, x, s);
        Assert.Equal(5.0, y.Span[0]);
        var dx = Filled(9, double.NaN);
        Backend.MaxPoolBackward(dx, Tensor(new[] { 7.0 }), y, x, s);
        Assert.Equal(new double[] { 0, 0, 7, 0, 0, 0, 0, 0, 0 }, Read(dx));
    }

    [Fact]
    public void OverlappingWindowsAddTheirGradients()
    {
        // 1×1×1×3 plane, window 3 stride 1 pad 1: the middle element is the max of all three windows.
        var s = new PoolShape(1, 1, 1, 3, Window: 3, Stride: 1, Pad: 1);
        var x = Tensor(new double[] { -3, -1, -2 });
        var y = Zeros(s.OutHeight * s.OutWidth);
        Backend.MaxPoolForward(y, x, s);
        Assert.Equal(new double[] { -1, -1, -1 }, Read(y));
        var dx = Filled(3, double.NaN);
        Backend.MaxPoolBackward(dx, Tensor(new double[] { 1, 10, 100 }), y, x, s);
        Assert.Equal(new double[] { 0, 111, 0 }, Read(dx));
    }

    [Fact]
    public void GlobalAvgPoolMatchesMeanAndFiniteDifferences()
    {
        const int batch = 3, channels = 5, spatial = 35;
        var xv = Random(batch * channels * spatial, 3);
        var x = Tensor(xv);
        var y = Filled(batch * channels, double.NaN);
        Backend.GlobalAvgPoolForward(y, x, batch, channels, spatial);
        var expected = Enumerable.Range(0, batch * channels).Select(p => xv.Skip(p * spatial).Take(spatial).Average()).ToArray();
        AssertClose(Read(y), expected, "avg pool forward", 1e-14);

        var r = Random(batch * channels, 4);
        double Loss() { Backend.GlobalAvgPoolForward(y, x, batch, channels, spatial); return Dot(y, r); }
        var dx = Filled(xv.Length, double.NaN);
        Backend.GlobalAvgPoolBackward(dx, Tensor(r), batch, channels, spatial);
        Check(Loss, x, Read(dx), "avg pool dx");
    }

    [Fact]
    public void RejectsPaddingOverHalfTheWindow()
    {
        var s = new PoolShape(1, 1, 4, 4, Window: 2, Stride: 1, Pad: 2);
        Assert.Throws<ArgumentException>(() => Backend.MaxPoolForward(Zeros(s.OutHeight * s.OutWidth), Zeros(16), s));
    }
}
