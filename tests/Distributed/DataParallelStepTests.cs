// N ranks with B/N pairs each equal one process with B, up to float reduction order: the data-parallel step on the
// CPU backend, ranks as threads over the shared-memory communicator, against one process with the same global batch.
// Each rank holds the views of its contiguous slice of the batch's samples ([view 0; view 1] of b = B/N samples); the
// model is distributed (global NT-Xent, synchronized BN in the encoder and the head), the gradients are all-reduced
// once over the flat buffer, and LARS runs on every rank.
// - fp32, 2 and 4 ranks, 3 steps: losses, the z-gradients, every BN running statistic and every parameter agree
//   with the single process to ≤ 1e-5 (relative to each tensor's largest entry), and the ranks' parameters are
//   bitwise identical. fp32 reduction-order noise is ~3e-6 in this model's gradients (as far from the fp64 result as
//   from the other rank count), and a tiny BN network amplifies it step by step, so the fp32 run takes a small
//   learning rate; the same comparison in fp64 at a 20× larger rate agrees to 1e-9, which leaves no room for a
//   systematic error. The same run with local BN differs: the test would see a missing synchronization.
// - double, finite differences: the gradient of the global loss through the all-gather (the NT-Xent layer alone,
//   3 ranks, every entry of every rank's z) and through the whole distributed model (sampled parameters perturbed on
//   every rank at once, whose derivative is the all-reduced gradient, and one rank's input views).
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Distributed;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Distributed;

public class DataParallelStepTests
{
    private const int Pairs = 16, Side = 16;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private static readonly LarsHyper Lars = new(LearningRate: 0.01, Momentum: 0.9, WeightDecay: 1e-4, TrustCoefficient: 1e-3);

    private static SimClrModelConfig Config(int pairs) => new()
    {
        Arch = ResNetArch.ResNet18,
        Stem = StemKind.Cifar,
        WidthMultiplier = 8 / 64.0,
        ImageHeight = Side,
        ImageWidth = Side,
        BatchSize = pairs,
        HeadHiddenDim = 16,
        HeadOutputDim = 8,
        Temperature = 0.5,
        Seed = 11,
    };

    /// <summary>The single-process views of step <paramref name="step"/>: rows [0, B) view 0, [B, 2B) view 1.</summary>
    private static T[] GlobalViews<T>(int step) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rng = new Random(1000 + step);
        return Enumerable.Range(0, 2 * Pairs * 3 * Side * Side).Select(_ => T.CreateTruncating((float)(rng.NextDouble() * 2 - 1))).ToArray();
    }

    /// <summary>Rank r's views: its b samples' view 0, then their view 1.</summary>
    private static T[] RankViews<T>(T[] global, int rank, int ranks)
    {
        int b = Pairs / ranks, image = 3 * Side * Side;
        var local = new T[2 * b * image];
        for (int l = 0; l < 2 * b; l++)
            Array.Copy(global, NtXentSubsetTests.SingleProcessRow(rank, l, b, ranks) * image, local, l * image, image);
        return local;
    }

    private sealed record StepRecord(double[] Losses, double[] Dz, double[] Parameters, double[] Buffers);

    /// <summary>Three training steps; returns the losses, step 1's dz (rows of this model), and the final state.</summary>
    private static StepRecord Train<T>(SimClrModel<T> model, Func<int, T[]> views, ICommunicator? group, LarsHyper lars)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var backend = model.Backend;
        var store = model.Parameters;
        using var momentum = store.AllocateStateBuffer();
        using var scratch = backend.Allocate<T>(2L * store.SegmentCount);
        using var input = backend.Allocate<T>(model.InputShape.Elements);
        var losses = new double[3];
        double[] dz = [];
        for (int step = 0; step < 3; step++)
        {
            backend.Upload(input.AsTensor(), views(step));
            store.ZeroGradients();
            losses[step] = Widen(model.Forward(input.AsTensor(model.InputShape, Layout.NCHW)))[0];
            // SimClrModel.Backward, written out to read dz before the arena reuses its memory.
            var dzTensor = model.Loss.Backward();
            if (step == 0) dz = Widen(dzTensor);
            model.Encoder.Backward(model.Head.Backward(dzTensor));
            group?.AllReduceSum(store.Gradients);
            backend.LarsUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments, scratch.AsTensor(), lars);
        }
        return new StepRecord(losses, dz, Widen(store.Parameters), Widen(store.Buffers));
    }

    private static double[] Widen<T>(Tensor<T> t) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        t.Span.ToArray().Select(double.CreateTruncating).ToArray();

    private static StepRecord SingleProcess<T>(LarsHyper lars) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        using var model = new SimClrModel<T>(new CpuBackend<T>(), Config(Pairs));
        return Train(model, GlobalViews<T>, group: null, lars);
    }

    private static StepRecord[] Ranks<T>(int ranks, BatchNormSync sync, LarsHyper lars) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        SharedMemoryGroup.Run(ranks, Timeout, comm =>
        {
            using var model = new SimClrModel<T>(new CpuBackend<T>(), Config(Pairs / ranks));
            model.Distribute(comm, sync);
            return Train(model, step => RankViews(GlobalViews<T>(step), comm.Rank, comm.Size), comm, lars);
        });

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void RanksMatchOneProcessWithTheSameGlobalBatchOverThreeSteps(int ranks) =>
        AssertRanksMatchOneProcess(SingleProcess<float>(Lars), Ranks<float>(ranks, BatchNormSync.Synchronized, Lars), ranks, 1e-5);

    [Fact]
    public void InDoubleTheRanksMatchOneProcessToRoundingAtALargeLearningRate()
    {
        var lars = Lars with { LearningRate = 0.2 };
        AssertRanksMatchOneProcess(SingleProcess<double>(lars), Ranks<double>(2, BatchNormSync.Synchronized, lars), 2, 1e-9);
    }

    private static void AssertRanksMatchOneProcess(StepRecord single, StepRecord[] multi, int ranks, double tolerance)
    {
        using var probe = new SimClrModel<float>(new CpuBackend<float>(), Config(Pairs));
        int b = Pairs / ranks, dim = probe.Head.OutDim;
        for (int r = 0; r < ranks; r++)
        {
            AssertClose(multi[r].Losses, single.Losses, $"rank {r} losses", tolerance);
            Assert.Equal(multi[0].Parameters, multi[r].Parameters);
            Assert.Equal(multi[0].Buffers, multi[r].Buffers);
        }
        // dz: rank r's local row l is the single process's row of the same sample and view.
        var dz = new double[single.Dz.Length];
        for (int r = 0; r < ranks; r++)
            for (int l = 0; l < 2 * b; l++)
                Array.Copy(multi[r].Dz, l * dim, dz, NtXentSubsetTests.SingleProcessRow(r, l, b, ranks) * dim, dim);
        AssertClose(dz, single.Dz, "z-gradients", tolerance);
        foreach (var e in probe.Parameters.Entries.Where(e => e.Kind != StoreTensorKind.Counter))
        {
            var (mine, theirs) = e.Kind == StoreTensorKind.Parameter ? (multi[0].Parameters, single.Parameters) : (multi[0].Buffers, single.Buffers);
            AssertClose(mine.AsSpan((int)e.Offset, (int)e.Elements), theirs.AsSpan((int)e.Offset, (int)e.Elements), $"{e.Name} after 3 steps", tolerance);
        }
    }

    [Fact]
    public void LocalBatchNormDiffersFromTheGlobalBatch()
    {
        var single = SingleProcess<float>(Lars);
        var local = Ranks<float>(2, BatchNormSync.Local, Lars);
        Assert.True(RelativeError(local[0].Losses, single.Losses) > 1e-3, "BN over each rank's half of the batch should change the loss");
        Assert.NotEqual(local[0].Buffers, local[1].Buffers);
    }

    [Fact]
    public void GradientThroughTheAllGatherMatchesFiniteDifferences()
    {
        const int ranks = 3, rows = 4, dim = 3;
        var results = SharedMemoryGroup.Run(ranks, Timeout, comm =>
        {
            var loss = new NtXentLoss<double>(Backend, 0.3);
            using var arena = new ActivationArena<double>(Backend);
            loss.Plan(arena, new Shape(rows, dim));
            arena.Allocate();
            var (zLength, rowLength) = loss.GatheredLengths(ranks);
            loss.Distribute(comm, Zeros(zLength), Zeros(rowLength), Zeros(rowLength));
            var z = Tensor(Random(rows * dim, 40 + comm.Rank), new Shape(rows, dim));
            double Loss() => Read(loss.Forward(z))[0];
            Loss();
            var analytic = Read(loss.Backward());
            // Every rank runs every perturbation (the loss is a collective); only the owner of the entry moves it.
            var numeric = new double[ranks * rows * dim];
            for (int owner = 0; owner < ranks; owner++)
                for (int i = 0; i < rows * dim; i++)
                {
                    double h = 1e-5, saved = z.Span[i];
                    if (comm.Rank == owner) z.Span[i] = saved + h;
                    double plus = Loss();
                    if (comm.Rank == owner) z.Span[i] = saved - h;
                    double minus = Loss();
                    if (comm.Rank == owner) z.Span[i] = saved;
                    numeric[owner * rows * dim + i] = (plus - minus) / (2 * h);
                }
            return (Analytic: analytic, Numeric: numeric);
        });
        for (int r = 0; r < ranks; r++)
            AssertClose(results[r].Analytic, results[0].Numeric.AsSpan(r * rows * dim, rows * dim), $"rank {r} dz through the all-gather");
    }

    [Fact]
    public void WholeDistributedModelGradientMatchesFiniteDifferences()
    {
        const int ranks = 2, pairs = 3;
        var config = new SimClrModelConfig
        {
            Arch = ResNetArch.ResNet18, Stem = StemKind.Cifar, WidthMultiplier = 3 / 64.0, ImageHeight = 5, ImageWidth = 7,
            BatchSize = pairs, HeadHiddenDim = 7, HeadOutputDim = 5, Temperature = 0.5, Seed = 2024, InputGradient = InputGradient.Compute,
        };
        var results = SharedMemoryGroup.Run(ranks, Timeout, comm =>
        {
            using var model = new SimClrModel<double>(Backend, config);
            model.Distribute(comm, BatchNormSync.Synchronized);
            var store = model.Parameters;
            var views = Tensor(Random(model.InputShape.Elements, 31 + comm.Rank), model.InputShape);
            double Loss() => Read(model.Forward(views))[0];
            store.ZeroGradients();
            Loss();
            model.Backward();
            comm.AllReduceSum(store.Gradients);
            var viewsGradient = Read(model.ViewsGradient);
            // Parameters are replicated: moving one on every rank moves the global loss by the all-reduced gradient.
            var rng = new Random(5);
            var checks = new List<(string What, double Analytic, double Numeric)>();
            const double h = 1e-7;
            foreach (var slot in store.ParameterSlots)
            {
                var grad = store.GetGradientHost(slot.Name);
                foreach (int i in new[] { Array.IndexOf(grad, grad.MaxBy(Math.Abs)), rng.Next(grad.Length) })
                    checks.Add((slot.Name, grad[i], NumericAt(Loss, store.View(slot.Name), i, h)));
            }
            // Rank 1's input: only rank 1 moves its pixel, every rank recomputes the global loss.
            foreach (int i in new[] { 5, 77, 200 })
            {
                double saved = views.Span[i], plus, minus;
                if (comm.Rank == 1) views.Span[i] = saved + h;
                plus = Loss();
                if (comm.Rank == 1) views.Span[i] = saved - h;
                minus = Loss();
                if (comm.Rank == 1) views.Span[i] = saved;
                checks.Add(("rank 1 views", comm.Rank == 1 ? viewsGradient[i] : double.NaN, (plus - minus) / (2 * h)));
            }
            return checks;
        });
        foreach (var group in results[1].GroupBy(c => c.What))
            AssertClose(group.Select(c => c.Analytic).ToArray(), group.Select(c => c.Numeric).ToArray(), $"distributed model {group.Key}");
        Assert.Contains(results[1], c => c.What.StartsWith("head.", StringComparison.Ordinal));
    }
}
