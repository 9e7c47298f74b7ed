// Optimizers over the flat parameter buffer on the CPU reference backend: one LARS step against values
// computed by hand from the SimCLR TF-LARS definition (ordinary, NoWeightDecay, NoAdaptation, zero-norm
// tensors) and SGD momentum (classic and Nesterov) over two steps, plus segment-table validation.
using SimClr.Kernels;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class OptimizerTests
{
    private static Tensor<ParamSegment> Segments(params ParamSegment[] segments)
    {
        var storage = new HostStorage<ParamSegment>(segments.Length);
        segments.CopyTo(storage.HostSpan(0, segments.Length));
        return storage.AsTensor();
    }

    [Fact]
    public void LarsStepMatchesHandComputedValues()
    {
        const double lr = 0.5, m = 0.9, wd = 0.1, eta = 0.01;
        // Segment A [0,2): ordinary. w = (3, 4), ‖w‖ = 5; g = (0.3, 0); g' = g + 0.1w = (0.6, 0.4), ‖g'‖ = √0.52.
        // Segment B [2,5): NoWeightDecay. w = (1, 2, 2), ‖w‖ = 3; g' = g = (0, 0.3, 0.4), ‖g'‖ = 0.5.
        // Segment C [5,7): NoAdaptation. w = (1, −1); g' = (0.5, 0.5) + 0.1w = (0.6, 0.4); trust 1.
        // Segment D [7,9): zero weights. w = (0, 0), g' = (1, 2): ‖w‖ = 0 so trust 1.
        // Segment E [9,11): zero gradient, NoWeightDecay. w = (1, 1), g' = 0: trust 1, only momentum decays.
        var w = Tensor(new double[] { 3, 4, 1, 2, 2, 1, -1, 0, 0, 1, 1 });
        var g = Tensor(new double[] { 0.3, 0, 0, 0.3, 0.4, 0.5, 0.5, 1, 2, 0, 0 });
        var v0 = new double[] { 0.1, -0.2, 0, 0.1, 0, 0.2, 0, 0, 0.5, 1, -1 };
        var v = Tensor(v0);
        var table = Segments(
            new ParamSegment(0, 2, SegmentFlags.None),
            new ParamSegment(2, 3, SegmentFlags.NoWeightDecay),
            new ParamSegment(5, 2, SegmentFlags.NoAdaptation),
            new ParamSegment(7, 2, SegmentFlags.None),
            new ParamSegment(9, 2, SegmentFlags.NoWeightDecay));
        var norms = Filled(10, double.NaN);
        Backend.LarsUpdate(w, v, g, table, norms, new LarsHyper(lr, m, wd, eta));

        double trustA = eta * 5 / Math.Sqrt(0.52), trustB = eta * 3 / 0.5;
        var expectedV = new[]
        {
            m * 0.1 + lr * trustA * 0.6, m * -0.2 + lr * trustA * 0.4,
            m * 0 + lr * trustB * 0, m * 0.1 + lr * trustB * 0.3, m * 0 + lr * trustB * 0.4,
            m * 0.2 + lr * 0.6, m * 0 + lr * 0.4,
            m * 0 + lr * 1, m * 0.5 + lr * 2,
            m * 1, m * -1,
        };
        var w0 = new double[] { 3, 4, 1, 2, 2, 1, -1, 0, 0, 1, 1 };
        AssertClose(Read(v), expectedV, "lars momentum", 1e-15);
        AssertClose(Read(w), w0.Select((x, i) => x - expectedV[i]).ToArray(), "lars weights", 1e-15);
        AssertClose(Read(norms), new[] { 5, Math.Sqrt(0.52), 3, 0.5, Math.Sqrt(2), Math.Sqrt(0.52), 0, Math.Sqrt(5), Math.Sqrt(2), 0 }, "lars norms", 1e-15);
    }

    [Theory]
    [InlineData(MomentumKind.Classic)]
    [InlineData(MomentumKind.Nesterov)]
    public void SgdMomentumMatchesHandComputedValuesOverTwoSteps(MomentumKind kind)
    {
        const double lr = 0.1, m = 0.9, wd = 0.01;
        var w = Tensor(new double[] { 1, -2, 3 });
        var v = Zeros(3);
        var g = Tensor(new double[] { 0.5, 0.25, -1 });
        var table = Segments(new ParamSegment(0, 2, SegmentFlags.None), new ParamSegment(2, 1, SegmentFlags.NoWeightDecay));
        var hyper = new SgdHyper(lr, m, wd, kind);

        double[] ew = { 1, -2, 3 }, ev = new double[3], eg = { 0.5, 0.25, -1 }, decay = { wd, wd, 0 };
        for (int step = 0; step < 2; step++)
        {
            Backend.SgdMomentumUpdate(w, v, g, table, hyper);
            for (int i = 0; i < 3; i++)
            {
                double gp = eg[i] + decay[i] * ew[i];
                ev[i] = m * ev[i] + gp;
                ew[i] -= kind == MomentumKind.Nesterov ? lr * (gp + m * ev[i]) : lr * ev[i];
            }
        }
        AssertClose(Read(v), ev, "sgd momentum", 1e-15);
        AssertClose(Read(w), ew, "sgd weights", 1e-15);
        // First step by hand for element 0 (classic): v = 0.5 + 0.01 = 0.51, w = 1 − 0.051 = 0.949.
        var once = Tensor(new double[] { 1 });
        Backend.SgdMomentumUpdate(once, Zeros(1), Tensor(new[] { 0.5 }), Segments(new ParamSegment(0, 1, SegmentFlags.None)), new SgdHyper(lr, m, wd));
        Assert.Equal(0.949, once.Span[0], 15);
    }

    [Fact]
    public void RejectsBadSegmentTables()
    {
        var h = new LarsHyper(0.1);
        var outside = Segments(new ParamSegment(2, 3, SegmentFlags.None));
        Assert.Throws<ArgumentException>(() => Backend.LarsUpdate(Zeros(4), Zeros(4), Zeros(4), outside, Zeros(2), h));
        var overlapping = Segments(new ParamSegment(0, 3, SegmentFlags.None), new ParamSegment(2, 2, SegmentFlags.None));
        Assert.Throws<ArgumentException>(() => Backend.LarsUpdate(Zeros(4), Zeros(4), Zeros(4), overlapping, Zeros(4), h));
        var fine = Segments(new ParamSegment(0, 4, SegmentFlags.None));
        Assert.Throws<ArgumentException>(() => Backend.LarsUpdate(Zeros(4), Zeros(4), Zeros(4), fine, Zeros(1), h));
        Assert.Throws<ArgumentException>(() => Backend.SgdMomentumUpdate(Zeros(4), Zeros(3), Zeros(4), fine, new SgdHyper(0.1)));
    }
}
