// Element-wise ops and memory of the CPU reference backend: each against its one-line definition,
// ReLU's backward against finite differences (inputs kept away from the kink), length checks.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class ElementwiseTests
{
    // 37 elements: not a multiple of any vector width, so the scalar tails run too.
    private const int Length = 37;

    [Fact]
    public void ArithmeticMatchesDefinitions()
    {
        var a = Random(Length, 1); var b = Random(Length, 2);

        var x = Tensor(a);
        Backend.Scale(x, -2.5);
        AssertClose(Read(x), a.Select(v => -2.5 * v).ToArray(), "scale", 0);

        var y = Tensor(a);
        Backend.Axpy(y, 0.5, Tensor(b));
        AssertClose(Read(y), a.Select((v, i) => v + 0.5 * b[i]).ToArray(), "axpy", 1e-16);

        var sum = Filled(Length, double.NaN);
        Backend.Add(sum, Tensor(a), Tensor(b));
        AssertClose(Read(sum), a.Select((v, i) => v + b[i]).ToArray(), "add", 0);

        var aliased = Tensor(a);
        Backend.Add(aliased, aliased, Tensor(b));
        AssertClose(Read(aliased), a.Select((v, i) => v + b[i]).ToArray(), "add in place", 0);

        var copy = Filled(Length, double.NaN);
        Backend.Copy(copy, Tensor(a));
        Assert.Equal(a, Read(copy));

        Backend.Fill(copy, 3.25);
        Assert.All(Read(copy), v => Assert.Equal(3.25, v));
    }

    [Fact]
    public void ReluForwardAndBackwardMatchDefinitions()
    {
        var a = Random(Length, 3); var g = Random(Length, 4);
        var y = Filled(Length, double.NaN);
        Backend.ReluForward(y, Tensor(a));
        Assert.Equal(a.Select(v => Math.Max(v, 0)).ToArray(), Read(y));
        var dx = Filled(Length, double.NaN);
        Backend.ReluBackward(dx, Tensor(g), y);
        Assert.Equal(a.Select((v, i) => v > 0 ? g[i] : 0).ToArray(), Read(dx));
    }

    [Fact]
    public void ReluRunsInPlace()
    {
        var a = Random(Length, 10); var g = Random(Length, 11);
        var x = Tensor(a);
        Backend.ReluForward(x, x);
        Assert.Equal(a.Select(v => Math.Max(v, 0)).ToArray(), Read(x));
        var d = Tensor(g);
        Backend.ReluBackward(d, d, x);
        Assert.Equal(a.Select((v, i) => v > 0 ? g[i] : 0).ToArray(), Read(d));
    }

    [Fact]
    public void ReluBackwardMatchesFiniteDifferences()
    {
        // Magnitudes in [0.1, 1] with random signs: no input within h of the kink at 0.
        var mags = Random(Length, 5, 0.1, 1);
        var signs = Random(Length, 6);
        var x = Tensor(mags.Select((m, i) => signs[i] < 0 ? -m : m).ToArray());
        var r = Random(Length, 7);
        var y = Zeros(Length);
        double Loss() { Backend.ReluForward(y, x); return Dot(y, r); }
        Loss();
        var dx = Filled(Length, double.NaN);
        Backend.ReluBackward(dx, Tensor(r), y);
        Check(Loss, x, Read(dx), "relu dx");
    }

    [Fact]
    public void FloatElementwiseMatchesDouble()
    {
        var f = new CpuBackend<float>();
        var a = Random(Length, 8); var g = Random(Length, 9);
        var y = ConvTests.FloatTensor(Length); var dx = ConvTests.FloatTensor(Length);
        f.ReluForward(y, ConvTests.FloatTensor(a));
        f.ReluBackward(dx, ConvTests.FloatTensor(g), y);
        Assert.Equal(a.Select((v, i) => v > 0 ? (float)g[i] : 0f).ToArray(), dx.Span.ToArray());
    }

    [Fact]
    public void MemoryRoundTripsAndRejectsWrongLengths()
    {
        using var storage = Backend.Allocate<double>(5);
        var t = storage.AsTensor();
        Assert.All(Read(t), v => Assert.Equal(0.0, v));
        Backend.Upload<double>(t, new double[] { 1, 2, 3, 4, 5 });
        var back = new double[5];
        Backend.Download<double>(back, t);
        Assert.Equal(new double[] { 1, 2, 3, 4, 5 }, back);
        Assert.Throws<ArgumentException>(() => Backend.Upload<double>(t, new double[4]));
        Assert.Throws<ArgumentException>(() => Backend.Add(Zeros(5), Zeros(5), Zeros(4)));
        Assert.Throws<ArgumentException>(() => Backend.Copy(Zeros(3), default));
    }
}
