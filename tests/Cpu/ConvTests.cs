// Convolution on the CPU reference backend: forward against a direct 7-loop convolution written here,
// both backward passes against central finite differences in double, the accumulation rule
// (dW adds, dx overwrites), and the float path against the double reference.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class ConvTests
{
    public static TheoryData<int, int, int, int, int, int, int, int> Shapes => new()
    {
        // batch, cin, h, w, cout, kernel, stride, pad
        { 3, 3, 5, 7, 5, 3, 1, 1 },
        { 2, 6, 5, 7, 7, 1, 2, 0 },
        { 2, 3, 9, 11, 5, 7, 2, 3 },
        { 3, 5, 5, 7, 6, 1, 1, 0 },
        { 1, 3, 6, 5, 2, 2, 2, 1 },
        { 2, 2, 7, 5, 3, 3, 2, 0 },
        { 2, 3, 2, 1, 4, 3, 1, 1 },
        { 1, 2, 3, 2, 3, 7, 2, 3 },
        { 1, 2, 1, 4, 3, 3, 3, 1 },
        { 5, 3, 3, 3, 4, 3, 1, 1 },
        { 7, 4, 3, 4, 3, 1, 1, 0 },
    };

    private static Conv2dShape Shape(int b, int cin, int h, int w, int cout, int k, int stride, int pad) =>
        new(b, cin, h, w, cout, k, k, stride, stride, pad, pad);

    /// <summary>y[n,o,oh,ow] = Σ_{c,kh,kw} x[n,c,oh·s−p+kh, ow·s−p+kw]·W[o,c,kh,kw], straight from the definition.</summary>
    private static double[] DirectConv(double[] x, double[] w, Conv2dShape s)
    {
        int oh = s.OutHeight, ow = s.OutWidth;
        var y = new double[s.OutputElements];
        for (int n = 0; n < s.Batch; n++)
        for (int o = 0; o < s.OutChannels; o++)
        for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++)
        {
            double sum = 0;
            for (int c = 0; c < s.InChannels; c++)
            for (int kh = 0; kh < s.KernelH; kh++)
            for (int kw = 0; kw < s.KernelW; kw++)
            {
                int ih = i * s.StrideH - s.PadH + kh, iw = j * s.StrideW - s.PadW + kw;
                if (ih < 0 || ih >= s.InHeight || iw < 0 || iw >= s.InWidth) continue;
                sum += x[((n * s.InChannels + c) * s.InHeight + ih) * s.InWidth + iw] * w[((o * s.InChannels + c) * s.KernelH + kh) * s.KernelW + kw];
            }
            y[((n * s.OutChannels + o) * oh + i) * ow + j] = sum;
        }
        return y;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardMatchesDirectConvolution(int b, int cin, int h, int w, int cout, int k, int stride, int pad)
    {
        var s = Shape(b, cin, h, w, cout, k, stride, pad);
        var xv = Random(s.InputElements, 1);
        var wv = Random(s.WeightElements, 2);
        var y = Filled(s.OutputElements, double.NaN);
        Backend.Conv2dForward(y, Tensor(xv), Tensor(wv), s);
        AssertClose(Read(y), DirectConv(xv, wv, s), "conv forward", 1e-12);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackwardMatchesFiniteDifferences(int b, int cin, int h, int w, int cout, int k, int stride, int pad)
    {
        var s = Shape(b, cin, h, w, cout, k, stride, pad);
        var x = Tensor(Random(s.InputElements, 3));
        var wt = Tensor(Random(s.WeightElements, 4));
        var r = Random(s.OutputElements, 5);
        var y = Zeros(s.OutputElements);
        double Loss() { Backend.Conv2dForward(y, x, wt, s); return Dot(y, r); }

        var dx = Filled(s.InputElements, double.NaN);
        Backend.Conv2dBackwardData(dx, Tensor(r), wt, s);
        Check(Loss, x, Read(dx), "conv dx");

        var dw = Zeros(s.WeightElements);
        Backend.Conv2dBackwardFilter(dw, Tensor(r), x, s);
        Check(Loss, wt, Read(dw), "conv dW");
    }

    [Fact]
    public void FilterGradientAccumulates()
    {
        var s = Shape(3, 3, 5, 7, 5, 3, 1, 1);
        var x = Tensor(Random(s.InputElements, 6));
        var dy = Tensor(Random(s.OutputElements, 7));
        var once = Zeros(s.WeightElements);
        Backend.Conv2dBackwardFilter(once, dy, x, s);
        var prior = Random(s.WeightElements, 8);
        var acc = Tensor(prior);
        Backend.Conv2dBackwardFilter(acc, dy, x, s);
        var expected = Read(once).Select((v, i) => v + prior[i]).ToArray();
        AssertClose(Read(acc), expected, "dW += ", 1e-13);
    }

    [Theory]
    [InlineData(3, 7, 9, 11, 6, 3, 1, 1)]
    [InlineData(2, 5, 13, 13, 7, 7, 2, 3)]
    [InlineData(3, 6, 5, 7, 5, 1, 2, 0)]
    public void FloatAgreesWithDouble(int b, int cin, int h, int w, int cout, int k, int stride, int pad)
    {
        var s = Shape(b, cin, h, w, cout, k, stride, pad);
        var f = new CpuBackend<float>();
        var xv = Random(s.InputElements, 9);
        var wv = Random(s.WeightElements, 10);
        var dyv = Random(s.OutputElements, 11);

        var y = Zeros(s.OutputElements); var dx = Zeros(s.InputElements); var dw = Zeros(s.WeightElements);
        Backend.Conv2dForward(y, Tensor(xv), Tensor(wv), s);
        Backend.Conv2dBackwardData(dx, Tensor(dyv), Tensor(wv), s);
        Backend.Conv2dBackwardFilter(dw, Tensor(dyv), Tensor(xv), s);

        var yf = FloatTensor(s.OutputElements); var dxf = FloatTensor(s.InputElements); var dwf = FloatTensor(s.WeightElements);
        f.Conv2dForward(yf, FloatTensor(xv), FloatTensor(wv), s);
        f.Conv2dBackwardData(dxf, FloatTensor(dyv), FloatTensor(wv), s);
        f.Conv2dBackwardFilter(dwf, FloatTensor(dyv), FloatTensor(xv), s);

        AssertClose(Widen(yf), Read(y), "float conv forward", 1e-5);
        AssertClose(Widen(dxf), Read(dx), "float conv dx", 1e-5);
        AssertClose(Widen(dwf), Read(dw), "float conv dW", 1e-5);
    }

    [Fact]
    public void RejectsWrongSizes()
    {
        var s = Shape(2, 3, 5, 7, 5, 3, 1, 1);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2dForward(Zeros(s.OutputElements - 1), Zeros(s.InputElements), Zeros(s.WeightElements), s));
        Assert.Contains("y", e.Message);
        Assert.Throws<ArgumentException>(() => Backend.Conv2dForward(Zeros(1), Zeros(1), Zeros(1), Shape(1, 1, 2, 2, 1, 5, 1, 0)));
    }

    internal static Tensor<float> FloatTensor(double[] values)
    {
        var t = new HostStorage<float>(values.Length).AsTensor();
        for (int i = 0; i < values.Length; i++) t.Span[i] = (float)values[i];
        return t;
    }

    internal static Tensor<float> FloatTensor(long length) => new HostStorage<float>(length).AsTensor();

    internal static double[] Widen(Tensor<float> t) => t.Span.ToArray().Select(v => (double)v).ToArray();
}
