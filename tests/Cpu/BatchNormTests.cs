// Batch norm on the CPU reference backend: saved statistics and outputs against direct formulas,
// gradients (dx, dgamma, dbeta) against finite differences for 2d and 1d shapes, the accumulation rule,
// running statistics over several steps (PyTorch momentum, unbiased variance), inference, float vs double.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class BatchNormTests
{
    private static (double Mean, double BiasedVar) Stats(double[] x, BatchNormShape s, int c)
    {
        var values = new List<double>();
        for (int n = 0; n < s.Batch; n++)
        for (int i = 0; i < s.Spatial; i++) values.Add(x[(n * s.Channels + c) * s.Spatial + i]);
        double mean = values.Average();
        return (mean, values.Select(v => (v - mean) * (v - mean)).Average());
    }

    [Theory]
    [InlineData(3, 5, 35)]
    [InlineData(5, 7, 1)]
    [InlineData(2, 6, 6)]
    public void TrainingForwardMatchesDirectStatistics(int batch, int channels, int spatial)
    {
        var s = new BatchNormShape(batch, channels, spatial, Epsilon: 1e-5, Momentum: 0.1);
        var xv = Random(s.Elements, 1, -2, 3); var gv = Random(channels, 2); var bv = Random(channels, 3);
        var y = Filled(s.Elements, double.NaN);
        var mean = Zeros(channels); var invStd = Zeros(channels);
        var rm = Zeros(channels); var rv = Tensor(Enumerable.Repeat(1.0, channels).ToArray());
        Backend.BatchNormForwardTraining(y, mean, invStd, rm, rv, Tensor(xv), Tensor(gv), Tensor(bv), s);

        var expectedY = new double[s.Elements];
        for (int c = 0; c < channels; c++)
        {
            var (m, v) = Stats(xv, s, c);
            Assert.Equal(m, mean.Span[c], 12);
            Assert.Equal(1 / Math.Sqrt(v + 1e-5), invStd.Span[c], 10);
            int count = batch * spatial;
            Assert.Equal(0.1 * m, rm.Span[c], 12);
            Assert.Equal(0.9 + 0.1 * v * count / (count - 1), rv.Span[c], 12);
            for (int n = 0; n < batch; n++)
            for (int i = 0; i < spatial; i++)
            {
                int idx = (n * channels + c) * spatial + i;
                expectedY[idx] = gv[c] * (xv[idx] - m) / Math.Sqrt(v + 1e-5) + bv[c];
            }
        }
        AssertClose(Read(y), expectedY, "bn forward", 1e-12);
    }

    [Theory]
    [InlineData(3, 5, 35)]
    [InlineData(5, 7, 1)]
    [InlineData(2, 3, 4)]
    public void BackwardMatchesFiniteDifferences(int batch, int channels, int spatial)
    {
        var s = new BatchNormShape(batch, channels, spatial);
        var x = Tensor(Random(s.Elements, 4, -2, 3));
        var gamma = Tensor(Random(channels, 5, 0.5, 1.5));
        var beta = Tensor(Random(channels, 6));
        var r = Random(s.Elements, 7);
        var y = Zeros(s.Elements);
        var mean = Zeros(channels); var invStd = Zeros(channels);
        var rm = Zeros(channels); var rv = Zeros(channels);
        double Loss() { Backend.BatchNormForwardTraining(y, mean, invStd, rm, rv, x, gamma, beta, s); return Dot(y, r); }
        Loss();

        var dx = Filled(s.Elements, double.NaN);
        var dgamma = Zeros(channels); var dbeta = Zeros(channels);
        Backend.BatchNormBackward(dx, dgamma, dbeta, Tensor(r), x, gamma, mean, invStd, s);
        var dxv = Read(dx); var dgv = Read(dgamma); var dbv = Read(dbeta);
        Check(Loss, x, dxv, "bn dx");
        Check(Loss, gamma, dgv, "bn dgamma");
        Check(Loss, beta, dbv, "bn dbeta");

        // Accumulation: a second backward adds to dgamma/dbeta and overwrites dx.
        Loss();
        var dx2 = Filled(s.Elements, 123.0);
        var dgPrior = Random(channels, 8); var dbPrior = Random(channels, 9);
        var dgamma2 = Tensor(dgPrior); var dbeta2 = Tensor(dbPrior);
        Backend.BatchNormBackward(dx2, dgamma2, dbeta2, Tensor(r), x, gamma, mean, invStd, s);
        AssertClose(Read(dx2), dxv, "bn dx overwrite", 1e-14);
        AssertClose(Read(dgamma2), dgv.Select((v, i) => v + dgPrior[i]).ToArray(), "dgamma +=", 1e-14);
        AssertClose(Read(dbeta2), dbv.Select((v, i) => v + dbPrior[i]).ToArray(), "dbeta +=", 1e-14);
    }

    [Fact]
    public void RunningStatisticsFollowPyTorchOverSeveralSteps()
    {
        var s = new BatchNormShape(3, 5, 7, Momentum: 0.25);
        var rm = Zeros(5); var rv = Tensor(Enumerable.Repeat(1.0, 5).ToArray());
        var expectedMean = new double[5]; var expectedVar = Enumerable.Repeat(1.0, 5).ToArray();
        var y = Zeros(s.Elements); var mean = Zeros(5); var invStd = Zeros(5);
        var gamma = Tensor(Random(5, 10)); var beta = Tensor(Random(5, 11));
        for (int step = 0; step < 4; step++)
        {
            var xv = Random(s.Elements, 20 + step, -1 + step, 2 + 2 * step);
            Backend.BatchNormForwardTraining(y, mean, invStd, rm, rv, Tensor(xv), gamma, beta, s);
            for (int c = 0; c < 5; c++)
            {
                var (m, v) = Stats(xv, s, c);
                double unbiased = v * 21.0 / 20.0;
                expectedMean[c] = 0.75 * expectedMean[c] + 0.25 * m;
                expectedVar[c] = 0.75 * expectedVar[c] + 0.25 * unbiased;
            }
        }
        AssertClose(Read(rm), expectedMean, "running mean", 1e-12);
        AssertClose(Read(rv), expectedVar, "running var", 1e-12);
    }

    [Fact]
    public void InferenceUsesRunningStatistics()
    {
        var s = new BatchNormShape(3, 6, 5, Epsilon: 1e-3);
        var xv = Random(s.Elements, 12); var gv = Random(6, 13); var bv = Random(6, 14);
        var mv = Random(6, 15); var vv = Random(6, 16, 0.5, 2);
        var y = Filled(s.Elements, double.NaN);
        Backend.BatchNormForwardInference(y, Tensor(xv), Tensor(gv), Tensor(bv), Tensor(mv), Tensor(vv), s);
        var expected = new double[s.Elements];
        for (int n = 0; n < 3; n++)
        for (int c = 0; c < 6; c++)
        for (int i = 0; i < 5; i++)
        {
            int idx = (n * 6 + c) * 5 + i;
            expected[idx] = gv[c] * (xv[idx] - mv[c]) / Math.Sqrt(vv[c] + 1e-3) + bv[c];
        }
        AssertClose(Read(y), expected, "bn inference", 1e-13);
    }

    [Fact]
    public void FloatAgreesWithDouble()
    {
        var s = new BatchNormShape(3, 7, 35);
        var f = new CpuBackend<float>();
        var xv = Random(s.Elements, 17, -1, 4); var gv = Random(7, 18); var bv = Random(7, 19); var dyv = Random(s.Elements, 20);

        var y = Zeros(s.Elements); var m = Zeros(7); var inv = Zeros(7); var dx = Zeros(s.Elements); var dg = Zeros(7); var db = Zeros(7);
        Backend.BatchNormForwardTraining(y, m, inv, Zeros(7), Zeros(7), Tensor(xv), Tensor(gv), Tensor(bv), s);
        Backend.BatchNormBackward(dx, dg, db, Tensor(dyv), Tensor(xv), Tensor(gv), m, inv, s);

        var yf = ConvTests.FloatTensor(s.Elements); var mf = ConvTests.FloatTensor(7); var invf = ConvTests.FloatTensor(7);
        var dxf = ConvTests.FloatTensor(s.Elements); var dgf = ConvTests.FloatTensor(7); var dbf = ConvTests.FloatTensor(7);
        f.BatchNormForwardTraining(yf, mf, invf, ConvTests.FloatTensor(7), ConvTests.FloatTensor(7), ConvTests.FloatTensor(xv), ConvTests.FloatTensor(gv), ConvTests.FloatTensor(bv), s);
        f.BatchNormBackward(dxf, dgf, dbf, ConvTests.FloatTensor(dyv), ConvTests.FloatTensor(xv), ConvTests.FloatTensor(gv), mf, invf, s);

        AssertClose(ConvTests.Widen(yf), Read(y), "float bn y", 1e-5);
        AssertClose(ConvTests.Widen(dxf), Read(dx), "float bn dx", 1e-5);
        AssertClose(ConvTests.Widen(dgf), Read(dg), "float bn dgamma", 1e-5);
        AssertClose(ConvTests.Widen(dbf), Read(db), "float bn dbeta", 1e-5);
    }

    [Fact]
    public void RejectsBadShapes()
    {
        var one = new BatchNormShape(1, 2, 1);
        Assert.Throws<ArgumentException>(() => Backend.BatchNormForwardTraining(Zeros(2), Zeros(2), Zeros(2), Zeros(2), Zeros(2), Zeros(2), Zeros(2), Zeros(2), one));
        var s = new BatchNormShape(2, 3, 4);
        Assert.Throws<ArgumentException>(() => Backend.BatchNormForwardInference(Zeros(24), Zeros(24), Zeros(2), Zeros(3), Zeros(3), Zeros(3), s));
    }
}
