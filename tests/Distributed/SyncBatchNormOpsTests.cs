// The synchronized batch-norm ops on the CPU twin (CpuBackend.SyncBatchNorm.cs), with the all-reduce written out
// as a sum of the ranks' sums: the batch split over W ranks gives the outputs, saved and running statistics of one
// BatchNormForwardTraining over the whole batch, and dx plus the summed dγ, dβ of one BatchNormBackward over it;
// finite differences in double check that dx is the gradient of a loss over ALL ranks' outputs with respect to one
// rank's input (the path through the other ranks' normalization included); and the double sums keep the variance
// of a channel whose mean is 10⁴ standard deviations (where Σx² in fp32 would cancel to noise).
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Distributed;

public class SyncBatchNormOpsTests
{
    /// <summary>One rank's slice [first, first + count) of the samples of an NCHW tensor.</summary>
    private static Tensor<double> Samples(Tensor<double> t, BatchNormShape whole, int first, int count) =>
        t.Slice((long)first * whole.Channels * whole.Spatial, new Shape(count * whole.Channels * whole.Spatial));

    private static Tensor<double> Sum(IReadOnlyList<Tensor<double>> parts)
    {
        var total = Zeros(parts[0].Length);
        foreach (var p in parts) Backend.Axpy(total, 1, p);
        return total;
    }

    private sealed record SplitRun(Tensor<double> Y, Tensor<double> Dx, Tensor<double> Dgamma, Tensor<double> Dbeta,
        Tensor<double>[] Mean, Tensor<double>[] InvStd, Tensor<double>[] RunningMean, Tensor<double>[] RunningVar);

    /// <summary>Runs the four ops as the SyncBN layer does on every rank, the all-reduces being sums.</summary>
    private static SplitRun RunSplit(BatchNormShape whole, int[] first, Tensor<double> x, Tensor<double> dy, double[] gamma, double[] beta)
    {
        int ranks = first.Length - 1, c = whole.Channels;
        var y = Filled(whole.Elements, double.NaN); var dx = Filled(whole.Elements, double.NaN);
        var shapes = Enumerable.Range(0, ranks).Select(r => whole with { Batch = first[r + 1] - first[r] }).ToArray();
        var sums = Enumerable.Range(0, ranks).Select(_ => Zeros(2 * c + 1)).ToArray();
        var mean = Enumerable.Range(0, ranks).Select(_ => Zeros(c)).ToArray();
        var invStd = Enumerable.Range(0, ranks).Select(_ => Zeros(c)).ToArray();
        var rm = Enumerable.Range(0, ranks).Select(_ => Zeros(c)).ToArray();
        var rv = Enumerable.Range(0, ranks).Select(_ => Filled(c, 1)).ToArray();
        var dg = Enumerable.Range(0, ranks).Select(_ => Zeros(c)).ToArray();
        var db = Enumerable.Range(0, ranks).Select(_ => Zeros(c)).ToArray();
        for (int r = 0; r < ranks; r++) Backend.SyncBatchNormStatistics(sums[r], Samples(x, whole, first[r], shapes[r].Batch), shapes[r]);
        var reduced = Sum(sums);
        for (int r = 0; r < ranks; r++)
            Backend.SyncBatchNormForward(Samples(y, whole, first[r], shapes[r].Batch), mean[r], invStd[r], rm[r], rv[r],
                Samples(x, whole, first[r], shapes[r].Batch), Tensor(gamma), Tensor(beta), reduced, shapes[r]);
        for (int r = 0; r < ranks; r++)
            Backend.SyncBatchNormBackwardReduce(sums[r], dg[r], db[r], Samples(dy, whole, first[r], shapes[r].Batch),
                Samples(x, whole, first[r], shapes[r].Batch), mean[r], invStd[r], shapes[r]);
        reduced = Sum(sums);
        for (int r = 0; r < ranks; r++)
            Backend.SyncBatchNormBackward(Samples(dx, whole, first[r], shapes[r].Batch), Samples(dy, whole, first[r], shapes[r].Batch),
                Samples(x, whole, first[r], shapes[r].Batch), Tensor(gamma), mean[r], invStd[r], reduced, shapes[r]);
        return new SplitRun(y, dx, Sum(dg), Sum(db), mean, invStd, rm, rv);
    }

    [Theory]
    [InlineData(6, 3, 5, 2)]
    [InlineData(7, 4, 1, 3)]
    [InlineData(8, 2, 9, 4)]
    public void SplitOverRanksEqualsOneBatchNormOverTheWholeBatch(int batch, int channels, int spatial, int ranks)
    {
        var whole = new BatchNormShape(batch, channels, spatial);
        var first = Enumerable.Range(0, ranks + 1).Select(r => batch * r / ranks).ToArray();
        var x = Tensor(Random(whole.Elements, 1, -2, 3)); var dy = Tensor(Random(whole.Elements, 2));
        var gamma = Random(channels, 3, 0.5, 1.5); var beta = Random(channels, 4);
        var split = RunSplit(whole, first, x, dy, gamma, beta);

        var y = Zeros(whole.Elements); var mean = Zeros(channels); var invStd = Zeros(channels);
        var rm = Zeros(channels); var rv = Filled(channels, 1); var dx = Zeros(whole.Elements); var dg = Zeros(channels); var db = Zeros(channels);
        Backend.BatchNormForwardTraining(y, mean, invStd, rm, rv, x, Tensor(gamma), Tensor(beta), whole);
        Backend.BatchNormBackward(dx, dg, db, dy, x, Tensor(gamma), mean, invStd, whole);

        AssertClose(Read(split.Y), Read(y), "y", 1e-12);
        AssertClose(Read(split.Dx), Read(dx), "dx", 1e-12);
        AssertClose(Read(split.Dgamma), Read(dg), "dgamma summed over ranks", 1e-12);
        AssertClose(Read(split.Dbeta), Read(db), "dbeta summed over ranks", 1e-12);
        for (int r = 0; r < ranks; r++)
        {
            AssertClose(Read(split.Mean[r]), Read(mean), $"rank {r} save_mean", 1e-12);
            AssertClose(Read(split.InvStd[r]), Read(invStd), $"rank {r} save_invstd", 1e-10);
            AssertClose(Read(split.RunningMean[r]), Read(rm), $"rank {r} running_mean", 1e-12);
            AssertClose(Read(split.RunningVar[r]), Read(rv), $"rank {r} running_var", 1e-12);
        }
    }

    [Fact]
    public void DxIsTheGradientOfAllRanksOutputsByFiniteDifferences()
    {
        var whole = new BatchNormShape(5, 3, 4);
        int[] first = [0, 2, 5];
        var x = Tensor(Random(whole.Elements, 5, -1, 2));
        var r = Random(whole.Elements, 6);
        var gamma = Random(3, 7, 0.5, 1.5); var beta = Random(3, 8);
        double Loss() => Dot(RunSplit(whole, first, x, Tensor(r), gamma, beta).Y, r);
        var analytic = RunSplit(whole, first, x, Tensor(r), gamma, beta);
        Check(Loss, x, Read(analytic.Dx), "sync bn dx over 2 ranks");
        // dγ and dβ (the ranks' shares summed) against differences in γ and β.
        var g = Tensor(gamma);
        double LossOfGamma() => Dot(RunSplit(whole, first, x, Tensor(r), Read(g), beta).Y, r);
        Check(LossOfGamma, g, Read(analytic.Dgamma), "sync bn dgamma");
        var b = Tensor(beta);
        double LossOfBeta() => Dot(RunSplit(whole, first, x, Tensor(r), gamma, Read(b)).Y, r);
        Check(LossOfBeta, b, Read(analytic.Dbeta), "sync bn dbeta");
    }

    [Fact]
    public void FloatStatisticsSurviveALargeChannelMean()
    {
        // Mean 1e4, standard deviation 1: Σx² − n·mean² in fp32 would have an absolute error near 1e8·6e-8·n.
        var whole = new BatchNormShape(16, 2, 64);
        var f = new CpuBackend<float>();
        var rng = new Random(9);
        var xv = new float[whole.Elements];
        for (int i = 0; i < xv.Length; i++) xv[i] = (float)(1e4 + (rng.NextDouble() * 2 - 1) * Math.Sqrt(3));
        var x = new HostStorage<float>(xv.Length).AsTensor();
        xv.CopyTo(x.Span);
        var sums = new HostStorage<double>(5).AsTensor();
        f.SyncBatchNormStatistics(sums, x.Slice(0, new Shape(8 * 2 * 64)), whole with { Batch = 8 });
        var second = new HostStorage<double>(5).AsTensor();
        f.SyncBatchNormStatistics(second, x.Slice(8 * 2 * 64, new Shape(8 * 2 * 64)), whole with { Batch = 8 });
        Backend.Axpy(sums, 1, second);
        var invStd = new HostStorage<float>(2).AsTensor();
        f.SyncBatchNormForward(new HostStorage<float>(xv.Length).AsTensor(), new HostStorage<float>(2).AsTensor(), invStd,
            new HostStorage<float>(2).AsTensor(), new HostStorage<float>(2).AsTensor(), x, Ones(f, 2), new HostStorage<float>(2).AsTensor(), sums, whole);
        for (int c = 0; c < 2; c++)
        {
            var values = new List<double>();
            for (int n = 0; n < 16; n++) for (int k = 0; k < 64; k++) values.Add(xv[(n * 2 + c) * 64 + k]);
            double m = values.Average(), v = values.Select(t => (t - m) * (t - m)).Average();
            Assert.Equal(1 / Math.Sqrt(v + 1e-5), invStd.Span[c], 1e-5 * (1 / Math.Sqrt(v + 1e-5)));
        }
    }

    private static Tensor<float> Ones(CpuBackend<float> f, int n)
    {
        var t = f.Allocate<float>(n).AsTensor();
        f.Fill(t, 1);
        return t;
    }

    [Fact]
    public void OpsRejectWrongSizes()
    {
        var s = new BatchNormShape(2, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.SyncBatchNormStatistics(Zeros(6), Zeros(s.Elements), s));
        Assert.Contains("sums", e.Message);
        var sums = Zeros(7);
        e = Assert.Throws<ArgumentException>(() => Backend.SyncBatchNormForward(Zeros(s.Elements), Zeros(3), Zeros(3), Zeros(3), Zeros(3),
            Zeros(s.Elements), Zeros(3), Zeros(3), sums, s));
        Assert.Contains("count", e.Message);
    }
}
