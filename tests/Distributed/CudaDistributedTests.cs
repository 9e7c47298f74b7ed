// The data-parallel pieces on a GPU (skipped where there is none, with the reason):
// - NT-Xent's rows-subset mode (kernels/ntxent.cu) against the CPU twin: 4 ranks' shares of a rank-major 2N = 256
//   (and 200 rows over 2 ranks, a range starting inside a tile), row log-sum-exps, loss shares and each rank's dz;
// - the synchronized batch norm kernels (kernels/syncbn.cu) against the CPU twin for 2d and 1d shapes, with the
//   sums added over two ranks' halves as the all-reduce does;
// - NCCL at world size 1 (needs libnccl too): its collectives on device tensors, then the whole data-parallel step
//   (distributed model, synchronized BN, gradient all-reduce over NCCL, LARS) against the CPU twin's plain step.
using SimClr.Kernels;
using SimClr.Kernels.Cuda.Native;
using SimClr.Kernels.Distributed;
using SimClr.Kernels.Distributed.Native;
using SimClr.Layers;
using SimClr.Tests.Cuda;
using static SimClr.Tests.Cuda.CudaTestSupport;

namespace SimClr.Tests.Distributed;

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class CudaDistributedTests
{
    [Theory]
    [InlineData(256, 128, 4)]
    [InlineData(200, 37, 2)]
    public void NtXentRowsSubsetMatchesTheCpuTwin(int rows, int dim, int ranks)
    {
        var gpu = Backend();
        var z = Random((long)rows * dim, 3);
        int own = rows / ranks;
        Tensor<float> zc = Host(z), zg = Device(gpu, z);
        Tensor<float> lseC = Host(new float[rows]), lseG = Device(gpu, new float[rows]), normsC = Host(new float[rows]), normsG = Device(gpu, new float[rows]);
        var shapes = Enumerable.Range(0, ranks).Select(r => new NtXentShape(rows, dim, 0.2) { RowStart = r * own, RowCount = own, PairBlock = own / 2 }).ToArray();
        foreach (var s in shapes)
        {
            Tensor<float> lossC = Host([0f]), lossG = Device(gpu, [0f]);
            CpuTwin.NtXentForward(lossC, lseC, normsC, zc, s);
            gpu.NtXentForward(lossG, lseG, normsG, zg, s);
            AssertTwin(gpu, lossG, lossC, $"loss share of rows [{s.RowStart}, {s.RowStart + own})", 1e-5);
        }
        AssertTwin(gpu, lseG, lseC, "row log-sum-exps of all ranks", 1e-5);
        AssertTwin(gpu, normsG, normsC, "norms", 1e-5);
        foreach (var s in shapes)
        {
            Tensor<float> dzC = Host(new float[own * dim]), dzG = Device(gpu, new float[own * dim]);
            CpuTwin.NtXentBackward(dzC, zc, lseC, normsC, s, 0.7);
            gpu.NtXentBackward(dzG, zg, lseG, normsG, s, 0.7);
            AssertTwin(gpu, dzG, dzC, $"dz of rows [{s.RowStart}, {s.RowStart + own})", 1e-4);
        }
    }

    [Theory]
    [InlineData(16, 24, 64)]
    [InlineData(64, 48, 1)]
    public void SyncBatchNormKernelsMatchTheCpuTwin(int batch, int channels, int spatial)
    {
        var gpu = Backend();
        var whole = new BatchNormShape(batch, channels, spatial);
        var half = whole with { Batch = batch / 2 };
        long n = half.Elements;
        var x = Random(whole.Elements, 5, -1f, 3f);
        var dy = Random(whole.Elements, 6);
        var gamma = Random(channels, 7, 0.5f, 1.5f);
        var beta = Random(channels, 8);
        var results = new float[2][][];
        foreach (var backend in new IBackend<float>[] { CpuTwin, gpu })
        {
            // Two ranks' halves of the batch, the sums added as the all-reduce does.
            var xs = Upload(backend, x); var dys = Upload(backend, dy);
            Tensor<float> Part(Tensor<float> t, int r) => t.Slice(r * n, new Shape(checked((int)n)));
            var sums0 = backend.Allocate<double>(2 * channels + 1).AsTensor();
            var sums1 = backend.Allocate<double>(2 * channels + 1).AsTensor();
            var reduced = backend.Allocate<double>(2 * channels + 1).AsTensor();
            var y = Upload(backend, new float[whole.Elements]); var dx = Upload(backend, new float[whole.Elements]);
            var mean = Upload(backend, new float[channels]); var invStd = Upload(backend, new float[channels]);
            var rm = Upload(backend, new float[channels]); var rv = Upload(backend, Enumerable.Repeat(1f, channels).ToArray());
            var dg = Upload(backend, new float[channels]); var db = Upload(backend, new float[channels]);
            var g = Upload(backend, gamma); var b = Upload(backend, beta);
            void AllReduce()
            {
                var host0 = new double[2 * channels + 1]; var host1 = new double[2 * channels + 1];
                backend.Download<double>(host0, sums0); backend.Download<double>(host1, sums1);
                backend.Upload<double>(reduced, host0.Zip(host1, (p, q) => p + q).ToArray());
            }
            backend.SyncBatchNormStatistics(sums0, Part(xs, 0), half);
            backend.SyncBatchNormStatistics(sums1, Part(xs, 1), half);
            AllReduce();
            for (int r = 0; r < 2; r++)
                backend.SyncBatchNormForward(Part(y, r), mean, invStd, rm, rv, Part(xs, r), g, b, reduced, half);
            backend.SyncBatchNormBackwardReduce(sums0, dg, db, Part(dys, 0), Part(xs, 0), mean, invStd, half);
            backend.SyncBatchNormBackwardReduce(sums1, dg, db, Part(dys, 1), Part(xs, 1), mean, invStd, half);
            AllReduce();
            for (int r = 0; r < 2; r++)
                backend.SyncBatchNormBackward(Part(dx, r), Part(dys, r), Part(xs, r), g, mean, invStd, reduced, half);
            results[backend == gpu ? 1 : 0] = [Read(backend, y), Read(backend, mean), Read(backend, invStd), Read(backend, rm), Read(backend, rv), Read(backend, dx), Read(backend, dg), Read(backend, db)];
        }
        string[] names = ["y", "save_mean", "save_invstd", "running_mean", "running_var", "dx", "dgamma", "dbeta"];
        for (int i = 0; i < names.Length; i++) AssertClose(results[1][i], results[0][i], names[i], 1e-5);
    }

    [Fact]
    public void NcclAtWorldSizeOneRunsItsCollectivesAndTheWholeStep()
    {
        var gpu = Backend();
        try { Nccl.Load(); }
        catch (CudaNotAvailableException e) { Assert.Skip($"NCCL is not installed: {e.Message}"); }
        using var host = new SingleProcessCommunicator();
        using var nccl = NcclCommunicator.Create(gpu, host, watchdog: null);
        var sum = Device(gpu, [1.5f, -2f]);
        nccl.AllReduceSum(sum);
        var gathered = Device(gpu, new float[4]);
        nccl.AllGather(gathered.Slice(0, new Shape(2)), sum);
        nccl.AllGather(gathered.Slice(2, new Shape(2)), gathered.Slice(2, new Shape(2)));
        nccl.Broadcast(sum, root: 0);
        nccl.Barrier();
        Assert.Equal([1.5f, -2f], Read(gpu, sum));
        Assert.Equal([1.5f, -2f, 0f, 0f], Read(gpu, gathered));

        var config = new SimClrModelConfig { Arch = ResNetArch.ResNet18, Stem = StemKind.Cifar, WidthMultiplier = 0.25, BatchSize = 16, Temperature = 0.5, Seed = 9 };
        var views = Random(2L * 16 * 3 * 32 * 32, 10);
        using var onGpu = new SimClrModel<float>(gpu, config);
        onGpu.Distribute(nccl, BatchNormSync.Synchronized);
        using var onCpu = new SimClrModel<float>(CpuTwin, config);
        float lossGpu = Step(onGpu, views, nccl), lossCpu = Step(onCpu, views, null);
        nccl.WaitForDevice();
        Assert.True(Math.Abs(lossGpu - lossCpu) <= 1e-4 * Math.Abs(lossCpu), $"loss: GPU over NCCL {lossGpu} vs CPU {lossCpu}");
        foreach (var e in onCpu.Parameters.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            AssertClose(onGpu.Parameters.GetHost(e.Name), onCpu.Parameters.GetHost(e.Name), e.Name + " after LARS", 1e-3);
    }

    private static float Step(SimClrModel<float> model, float[] views, ICommunicator? group)
    {
        var backend = model.Backend;
        using var input = backend.Allocate<float>(model.InputShape.Elements);
        backend.Upload(input.AsTensor(), views);
        var store = model.Parameters;
        store.ZeroGradients();
        var loss = model.Forward(input.AsTensor(model.InputShape, Layout.NCHW));
        model.Backward();
        group?.AllReduceSum(store.Gradients);
        using var momentum = store.AllocateStateBuffer();
        using var norms = backend.Allocate<float>(2L * store.SegmentCount);
        backend.LarsUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments, norms.AsTensor(), new LarsHyper(LearningRate: 1.2));
        var host = new float[1];
        backend.Download<float>(host, loss);
        return host[0];
    }
}
