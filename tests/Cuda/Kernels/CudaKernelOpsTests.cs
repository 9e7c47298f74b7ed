// The hand-written kernels of CudaBackend (kernels/elementwise.cu, ntxent.cu, cosine.cu, lars.cu) against
// their CPU twins (CpuBackend<float>, which defines them), FP32 within 1e-5 relative error (max |gpu − cpu|
// over max |cpu|) for values and gradients; NT-Xent, whose rows sum over all 2N rows, within
// CudaTestSupport.ReductionTolerance(2N) (6e-5 at 2N = 16384). Shapes are chosen to hit partial tiles, partial blocks, tails of
// the float4 paths and misaligned views; NT-Xent runs at 2N ∈ {6, 130, 4096, 16384} with D = 128 and odd D
// (and a D spanning three 128-wide backward slices); LARS covers every flag combination, a zero-norm segment,
// zero gradients, an empty segment, misaligned offsets and repeated steps (its ticket counters re-arm).
// Also: bad arguments are refused with the op and tensor named, the deterministic reductions give
// bitwise-equal results run to run, nothing allocates once shapes have been seen (or reserved), and a captured graph of
// the NT-Xent passes replays the same result.
// Every test skips without a CUDA device.
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using static SimClr.Tests.Cuda.CudaTestSupport;

namespace SimClr.Tests.Cuda.Kernels;

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class CudaKernelOpsTests
{
    private const double Fp32 = 1e-5;

    /// <summary>The same values on both backends, as views starting <paramref name="offset"/> elements into
    /// their storage (offset 1 makes every float4 path fall back to scalar code).</summary>
    private static (Tensor<float> Cpu, Tensor<float> Gpu) Pair(CudaBackend gpu, float[] values, int offset = 0)
    {
        int n = values.Length - offset;
        return (Host(values).Slice(offset, new Shape(n)), Device(gpu, values).Slice(offset, new Shape(n)));
    }

    private static Tensor<float> Whole(Tensor<float> t) => t.Storage.AsTensor();

    /// <summary>Compares the whole storages, so that a write outside the view is caught too.</summary>
    private static void AssertPair(CudaBackend gpu, (Tensor<float> Cpu, Tensor<float> Gpu) pair, string what, double tolerance = Fp32) =>
        AssertTwin(gpu, Whole(pair.Gpu), Whole(pair.Cpu), what, tolerance);

    // ---- element-wise ------------------------------------------------------------------------------

    [Theory]
    [InlineData(1, 0)]
    [InlineData(1027, 0)]
    [InlineData(1027, 1)]
    [InlineData(4099, 3)]
    [InlineData(300_001, 2)]
    public void ElementwiseOpsMatchCpu(int n, int offset)
    {
        var gpu = Backend();
        float[] xv = Random(n + offset, 1), yv = Random(n + offset, 2), gv = Random(n + offset, 3);

        var y = Pair(gpu, yv, offset);
        CpuTwin.Fill(y.Cpu, 2.5); gpu.Fill(y.Gpu, 2.5);
        AssertPair(gpu, y, $"fill n={n} offset={offset}");

        var x = Pair(gpu, xv, offset);
        y = Pair(gpu, yv, offset);
        CpuTwin.Copy(y.Cpu, x.Cpu); gpu.Copy(y.Gpu, x.Gpu);
        AssertPair(gpu, y, "copy");

        y = Pair(gpu, yv, offset);
        CpuTwin.Scale(y.Cpu, -1.75); gpu.Scale(y.Gpu, -1.75);
        AssertPair(gpu, y, "scale");

        y = Pair(gpu, yv, offset);
        CpuTwin.Axpy(y.Cpu, 0.3, x.Cpu); gpu.Axpy(y.Gpu, 0.3, x.Gpu);
        AssertPair(gpu, y, "axpy");

        y = Pair(gpu, yv, offset);
        CpuTwin.Add(y.Cpu, x.Cpu, y.Cpu); gpu.Add(y.Gpu, x.Gpu, y.Gpu);
        AssertPair(gpu, y, "add with y aliasing b");

        y = Pair(gpu, yv, offset);
        CpuTwin.ReluForward(y.Cpu, x.Cpu); gpu.ReluForward(y.Gpu, x.Gpu);
        AssertPair(gpu, y, "relu forward");

        var inPlace = Pair(gpu, xv, offset);
        CpuTwin.ReluForward(inPlace.Cpu, inPlace.Cpu); gpu.ReluForward(inPlace.Gpu, inPlace.Gpu);
        AssertPair(gpu, inPlace, "relu forward in place");

        var dx = Pair(gpu, yv, offset);
        var dy = Pair(gpu, gv, offset);
        CpuTwin.ReluBackward(dx.Cpu, dy.Cpu, x.Cpu); gpu.ReluBackward(dx.Gpu, dy.Gpu, x.Gpu);
        AssertPair(gpu, dx, "relu backward");

        dy = Pair(gpu, gv, offset);
        CpuTwin.ReluBackward(dy.Cpu, dy.Cpu, x.Cpu); gpu.ReluBackward(dy.Gpu, dy.Gpu, x.Gpu);
        AssertPair(gpu, dy, "relu backward with dx aliasing dy");
    }

    [Theory]
    [InlineData(3, 5, 49)]
    [InlineData(2, 7, 1)]
    [InlineData(4, 512, 16)]
    [InlineData(1, 3, 1000)]
    public void GlobalAvgPoolMatchesCpu(int batch, int channels, int spatial)
    {
        var gpu = Backend();
        int rows = batch * channels;
        var x = Pair(gpu, Random(rows * spatial, 10));
        var y = Pair(gpu, Random(rows, 11));
        CpuTwin.GlobalAvgPoolForward(y.Cpu, x.Cpu, batch, channels, spatial);
        gpu.GlobalAvgPoolForward(y.Gpu, x.Gpu, batch, channels, spatial);
        AssertPair(gpu, y, "global average pool forward");

        var dy = Pair(gpu, Random(rows, 12));
        var dx = Pair(gpu, Random(rows * spatial, 13));
        CpuTwin.GlobalAvgPoolBackward(dx.Cpu, dy.Cpu, batch, channels, spatial);
        gpu.GlobalAvgPoolBackward(dx.Gpu, dy.Gpu, batch, channels, spatial);
        AssertPair(gpu, dx, "global average pool backward");
    }

    [Theory]
    [InlineData(37, 129, true)]
    [InlineData(1, 1, false)]
    [InlineData(300, 2048, false)]
    [InlineData(64, 128, true)]
    public void L2NormalizeMatchesCpu(int rows, int cols, bool zeroRow)
    {
        var gpu = Backend();
        var s = new RowsShape(rows, cols);
        var xv = Random(rows * cols, 20);
        if (zeroRow) Array.Clear(xv, 0, cols);
        var x = Pair(gpu, xv);
        var y = Pair(gpu, Random(rows * cols, 21));
        var norms = Pair(gpu, Random(rows, 22));
        CpuTwin.L2NormalizeForward(y.Cpu, norms.Cpu, x.Cpu, s);
        gpu.L2NormalizeForward(y.Gpu, norms.Gpu, x.Gpu, s);
        AssertPair(gpu, y, "l2 normalize y");
        AssertPair(gpu, norms, "l2 normalize norms");

        // The zero row's gradient is dy/eps (1e12 scale): compare it apart from the others.
        var dy = Pair(gpu, Random(rows * cols, 23));
        var dx = Pair(gpu, Random(rows * cols, 24));
        CpuTwin.L2NormalizeBackward(dx.Cpu, dy.Cpu, y.Cpu, norms.Cpu, s);
        gpu.L2NormalizeBackward(dx.Gpu, dy.Gpu, y.Gpu, norms.Gpu, s);
        int first = zeroRow ? 1 : 0;
        if (zeroRow) AssertTwin(gpu, dx.Gpu.Slice(0, new Shape(cols)), dx.Cpu.Slice(0, new Shape(cols)), "l2 normalize dx of the zero row", Fp32);
        if (rows > first)
            AssertTwin(gpu, dx.Gpu.Slice((long)first * cols, new Shape((rows - first) * cols)), dx.Cpu.Slice((long)first * cols, new Shape((rows - first) * cols)), "l2 normalize dx", Fp32);
    }

    // ---- NT-Xent -----------------------------------------------------------------------------------

    public static TheoryData<int, int, double, bool> NtXentCases() => new()
    {
        { 6, 128, 0.5, false },
        { 6, 37, 0.1, false },
        { 130, 128, 0.5, true },
        { 130, 37, 0.2, false },
        { 258, 300, 0.5, false },
        { 4096, 128, 0.5, false },
        { 4096, 37, 0.1, false },
        { 16384, 128, 0.2, false },
        { 16384, 37, 0.5, false },
    };

    [Theory]
    [MemberData(nameof(NtXentCases))]
    public void NtXentMatchesCpu(int rows, int dim, double temperature, bool zeroRow)
    {
        var gpu = Backend();
        var s = new NtXentShape(rows, dim, temperature);
        var zv = Random((long)rows * dim, 30);
        if (zeroRow) Array.Clear(zv, dim, dim);
        var z = Pair(gpu, zv);
        var loss = Pair(gpu, new[] { float.NaN });
        var lse = Pair(gpu, Random(rows, 31));
        var norms = Pair(gpu, Random(rows, 32));
        CpuTwin.NtXentForward(loss.Cpu, lse.Cpu, norms.Cpu, z.Cpu, s);
        gpu.NtXentForward(loss.Gpu, lse.Gpu, norms.Gpu, z.Gpu, s);
        // Each row's log-sum-exp and gradient sum over all 2N − 1 other rows, the loss over 2N rows.
        double tolerance = ReductionTolerance(rows);
        AssertPair(gpu, loss, $"nt-xent loss 2N={rows} D={dim}", tolerance);
        AssertPair(gpu, lse, "nt-xent row log-sum-exp", tolerance);
        AssertPair(gpu, norms, "nt-xent norms", ReductionTolerance(dim));

        var dz = Pair(gpu, Random((long)rows * dim, 33));
        CpuTwin.NtXentBackward(dz.Cpu, z.Cpu, lse.Cpu, norms.Cpu, s, 0.7);
        gpu.NtXentBackward(dz.Gpu, z.Gpu, lse.Gpu, norms.Gpu, s, 0.7);
        if (zeroRow)
        {
            // Row 1 is zero: its gradient is divided by eps, far above the others; compare the rows apart.
            AssertTwin(gpu, dz.Gpu.Slice(dim, new Shape(dim)), dz.Cpu.Slice(dim, new Shape(dim)), "nt-xent dz of the zero row", tolerance);
            AssertTwin(gpu, dz.Gpu.Slice(2L * dim, new Shape((rows - 2) * dim)), dz.Cpu.Slice(2L * dim, new Shape((rows - 2) * dim)), "nt-xent dz", tolerance);
        }
        else
        {
            AssertPair(gpu, dz, "nt-xent dz", tolerance);
        }
    }

    // ---- cosine similarity -------------------------------------------------------------------------

    [Theory]
    [InlineData(70, 130, 33)]
    [InlineData(5, 1000, 512)]
    [InlineData(1, 1, 1)]
    [InlineData(64, 64, 16)]
    [InlineData(129, 65, 128)]
    public void CosineSimilarityMatchesCpu(int m, int n, int dim)
    {
        var gpu = Backend();
        var av = Random(m * dim, 40);
        Array.Clear(av, 0, dim);
        var a = Pair(gpu, av);
        var b = Pair(gpu, Random(n * dim, 41));
        var sim = Pair(gpu, Random(m * n, 42));
        CpuTwin.CosineSimilarity(sim.Cpu, a.Cpu, b.Cpu, m, n, dim);
        gpu.CosineSimilarity(sim.Gpu, a.Gpu, b.Gpu, m, n, dim);
        AssertPair(gpu, sim, $"cosine {m}x{n}x{dim}");
    }

    // ---- softmax cross-entropy -----------------------------------------------------------------------

    [Theory]
    [InlineData(37, 10)]
    [InlineData(100, 1000)]
    [InlineData(1, 1)]
    [InlineData(9000, 10)]
    public void SoftmaxCrossEntropyMatchesCpu(int batch, int classes)
    {
        var gpu = Backend();
        var s = new ClassShape(batch, classes);
        var logits = Pair(gpu, Random(batch * classes, 50, -4f, 4f));
        var rng = new Random(51);
        var labelValues = Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();
        var (cpuLabels, gpuLabels) = (Upload(CpuTwin, labelValues), Upload(gpu, labelValues));
        var loss = Pair(gpu, new[] { float.NaN });
        var probs = Pair(gpu, Random(batch * classes, 52));
        CpuTwin.SoftmaxCrossEntropyForward(loss.Cpu, probs.Cpu, logits.Cpu, cpuLabels, s);
        gpu.SoftmaxCrossEntropyForward(loss.Gpu, probs.Gpu, logits.Gpu, gpuLabels, s);
        AssertPair(gpu, loss, "cross-entropy loss");
        AssertPair(gpu, probs, "cross-entropy probabilities");

        var dlogits = Pair(gpu, Random(batch * classes, 53));
        CpuTwin.SoftmaxCrossEntropyBackward(dlogits.Cpu, probs.Cpu, cpuLabels, s, 0.6);
        gpu.SoftmaxCrossEntropyBackward(dlogits.Gpu, probs.Gpu, gpuLabels, s, 0.6);
        AssertPair(gpu, dlogits, "cross-entropy dlogits");
    }

    [Fact]
    public void OutOfRangeLabelMakesTheGpuLossNaN()
    {
        var gpu = Backend();
        var s = new ClassShape(4, 3);
        var loss = Device(gpu, new float[1]);
        gpu.SoftmaxCrossEntropyForward(loss, Device(gpu, Random(12, 54)), Device(gpu, Random(12, 55)), Upload(gpu, new[] { 0, 2, 3, 1 }), s);
        Assert.True(float.IsNaN(Read(gpu, loss)[0]));
    }

    // ---- optimizers --------------------------------------------------------------------------------

    /// <summary>Segments with every flag combination, a zero-norm weight tensor, zero gradients, an empty
    /// segment, gaps nobody owns, odd offsets (scalar paths) and one long aligned segment (float4 path over
    /// many chunks).</summary>
    private static (ParamSegment[] Segments, float[] Param, float[] Momentum, float[] Grad) OptimizerProblem(int seed)
    {
        var segments = new[]
        {
            new ParamSegment(0, 1000, SegmentFlags.None),
            new ParamSegment(1000, 37, SegmentFlags.NoWeightDecay),
            new ParamSegment(1037, 3, SegmentFlags.NoAdaptation),
            new ParamSegment(1040, 517, SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation),
            new ParamSegment(1557, 64, SegmentFlags.None),
            new ParamSegment(1621, 0, SegmentFlags.None),
            new ParamSegment(1625, 2051, SegmentFlags.None),
            new ParamSegment(3680, 300_001, SegmentFlags.NoWeightDecay),
            new ParamSegment(303_681, 129, SegmentFlags.None),
        };
        int length = 303_681 + 129 + 5;
        float[] w = Random(length, seed), v = Random(length, seed + 1), g = Random(length, seed + 2, -0.01f, 0.01f);
        Array.Clear(w, 1557, 64);
        Array.Clear(g, 1625, 2051);
        return (segments, w, v, g);
    }

    [Theory]
    [InlineData(0.3, 0.9, 1e-4, 1e-3)]
    [InlineData(4.8, 0.9, 1e-6, 1e-3)]
    [InlineData(0.1, 0.0, 0.0, 0.02)]
    public void LarsMatchesCpuOverSeveralSteps(double lr, double momentum, double weightDecay, double trust)
    {
        var gpu = Backend();
        var h = new LarsHyper(lr, momentum, weightDecay, trust);
        var (segments, wv, vv, gv) = OptimizerProblem(60);
        var (w, v, g) = (Pair(gpu, wv), Pair(gpu, vv), Pair(gpu, gv));
        var (cpuSegments, gpuSegments) = (Upload(CpuTwin, segments), Upload(gpu, segments));
        var norms = Pair(gpu, Random(2 * segments.Length, 61));
        for (int step = 0; step < 3; step++)
        {
            CpuTwin.LarsUpdate(w.Cpu, v.Cpu, g.Cpu, cpuSegments, norms.Cpu, h);
            gpu.LarsUpdate(w.Gpu, v.Gpu, g.Gpu, gpuSegments, norms.Gpu, h);
            AssertPair(gpu, norms, $"lars norms, step {step}");
            AssertPair(gpu, w, $"lars param, step {step}");
            AssertPair(gpu, v, $"lars momentum, step {step}");
        }
    }

    [Theory]
    [InlineData(MomentumKind.Classic, 5e-4)]
    [InlineData(MomentumKind.Nesterov, 5e-4)]
    [InlineData(MomentumKind.Nesterov, 0.0)]
    public void SgdMomentumMatchesCpuOverSeveralSteps(MomentumKind kind, double weightDecay)
    {
        var gpu = Backend();
        var h = new SgdHyper(0.1, 0.9, weightDecay, kind);
        var (segments, wv, vv, gv) = OptimizerProblem(70);
        var (w, v, g) = (Pair(gpu, wv), Pair(gpu, vv), Pair(gpu, gv));
        var (cpuSegments, gpuSegments) = (Upload(CpuTwin, segments), Upload(gpu, segments));
        for (int step = 0; step < 3; step++)
        {
            CpuTwin.SgdMomentumUpdate(w.Cpu, v.Cpu, g.Cpu, cpuSegments, h);
            gpu.SgdMomentumUpdate(w.Gpu, v.Gpu, g.Gpu, gpuSegments, h);
            AssertPair(gpu, w, $"sgd param, step {step}");
            AssertPair(gpu, v, $"sgd momentum, step {step}");
        }
    }

    // ---- argument checks ---------------------------------------------------------------------------

    [Fact]
    public void LaunchersRejectBadArgumentsNamingTheOpAndTensor()
    {
        var gpu = Backend();
        var s = new NtXentShape(8, 4, 0.5);
        var (loss, lse, norms) = (Device(gpu, new float[1]), Device(gpu, new float[8]), Device(gpu, new float[8]));
        var e = Assert.Throws<ArgumentException>(() => gpu.NtXentForward(loss, lse, norms, Device(gpu, new float[31]), s));
        Assert.Contains("NtXentForward", e.Message);
        Assert.Contains("z", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => gpu.NtXentForward(loss, lse, norms, Device(gpu, new float[28]), new NtXentShape(7, 4, 0.5)));
        Assert.Contains("even", e.Message);
        e = Assert.Throws<ArgumentException>(() => gpu.NtXentBackward(Device(gpu, new float[32]), Device(gpu, new float[32]), lse, Host(new float[8]), s));
        Assert.Contains("not GPU memory", e.Message);
        e = Assert.Throws<ArgumentException>(() => gpu.Add(Device(gpu, new float[5]), Device(gpu, new float[5]), Device(gpu, new float[4])));
        Assert.Equal("b", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => gpu.CosineSimilarity(Device(gpu, new float[6]), Device(gpu, new float[6]), Device(gpu, new float[9]), 2, 3, 0));
        Assert.Contains("dim", e.Message);
        var (segments, wv, vv, gv) = OptimizerProblem(95);
        e = Assert.Throws<ArgumentException>(() => gpu.LarsUpdate(Device(gpu, wv), Device(gpu, vv), Device(gpu, gv), Upload(gpu, segments), Device(gpu, new float[segments.Length]), new LarsHyper(0.1)));
        Assert.Equal("normScratch", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => gpu.SgdMomentumUpdate(Device(gpu, wv), Device(gpu, vv[1..]), Device(gpu, gv), Upload(gpu, segments), new SgdHyper(0.1)));
        Assert.Equal("momentum", e.ParamName);
    }

    // ---- determinism, allocation, graphs -----------------------------------------------------------

    [Fact]
    public void ReductionsAreBitwiseReproducible()
    {
        var gpu = Backend();
        var s = new NtXentShape(4096, 128, 0.1);
        var z = Device(gpu, Random(4096L * 128, 80));
        float[] RunNtXent()
        {
            var (loss, lse, norms, dz) = (Device(gpu, new float[1]), Device(gpu, new float[4096]), Device(gpu, new float[4096]), Device(gpu, new float[4096 * 128]));
            gpu.NtXentForward(loss, lse, norms, z, s);
            gpu.NtXentBackward(dz, z, lse, norms, s);
            return [.. Read(gpu, loss), .. Read(gpu, lse), .. Read(gpu, dz)];
        }
        Assert.Equal(RunNtXent(), RunNtXent());

        var (segments, wv, vv, gv) = OptimizerProblem(81);
        float[] RunLars()
        {
            var (w, v, g) = (Device(gpu, wv), Device(gpu, vv), Device(gpu, gv));
            var norms = Device(gpu, new float[2 * segments.Length]);
            gpu.LarsUpdate(w, v, g, Upload(gpu, segments), norms, new LarsHyper(1.0));
            return [.. Read(gpu, norms), .. Read(gpu, w)];
        }
        Assert.Equal(RunLars(), RunLars());
    }

    [Fact]
    public void NoDeviceAllocationOnceShapesHaveBeenSeen()
    {
        var gpu = Backend();
        var s = new NtXentShape(1024, 128, 0.5);
        var (z, dz) = (Device(gpu, Random(1024 * 128, 90)), Device(gpu, new float[1024 * 128]));
        var (loss, lse, norms) = (Device(gpu, new float[1]), Device(gpu, new float[1024]), Device(gpu, new float[1024]));
        var cls = new ClassShape(256, 10);
        var (logits, probs, labels) = (Device(gpu, Random(2560, 91)), Device(gpu, new float[2560]), Upload(gpu, new int[256]));
        var (segments, wv, vv, gv) = OptimizerProblem(92);
        var (w, v, g, segs) = (Device(gpu, wv), Device(gpu, vv), Device(gpu, gv), Upload(gpu, segments));
        var larsNorms = Device(gpu, new float[2 * segments.Length]);

        void Step()
        {
            gpu.NtXentForward(loss, lse, norms, z, s);
            gpu.NtXentBackward(dz, z, lse, norms, s);
            gpu.SoftmaxCrossEntropyForward(loss, probs, logits, labels, cls);
            gpu.LarsUpdate(w, v, g, segs, larsNorms, new LarsHyper(0.5));
            gpu.Fill(g, 0);
        }

        AssertNoAllocationsAfterWarmUp(gpu, Step);
    }

    [Fact]
    public void ReservedScratchCoversTheFirstCall()
    {
        var gpu = Backend();
        // Needs more scratch than any other test's problem, so that the reservation itself must grow it.
        const int rows = 40_000;
        var (segments, wv, vv, gv) = OptimizerProblem(96);
        gpu.Synchronize();
        long beforeReserve = gpu.AllocationCount;
        gpu.ReserveKernelScratch(rows, segments.Length);
        Assert.True(gpu.AllocationCount > beforeReserve, "the reservation should have grown the scratch");
        var s = new NtXentShape(rows, 8, 0.5);
        var (z, loss, lse, norms) = (Device(gpu, Random(rows * 8L, 97)), Device(gpu, new float[1]), Device(gpu, new float[rows]), Device(gpu, new float[rows]));
        var (w, v, g, segs, larsNorms) = (Device(gpu, wv), Device(gpu, vv), Device(gpu, gv), Upload(gpu, segments), Device(gpu, new float[2 * segments.Length]));
        gpu.Synchronize();
        long before = gpu.AllocationCount;
        gpu.NtXentForward(loss, lse, norms, z, s);
        gpu.LarsUpdate(w, v, g, segs, larsNorms, new LarsHyper(0.5));
        gpu.Synchronize();
        Assert.Equal(before, gpu.AllocationCount);
    }

    [Fact]
    public void CapturedNtXentGraphReplaysTheSameResult()
    {
        var gpu = Backend();
        var s = new NtXentShape(520, 96, 0.3);
        var z = Device(gpu, Random(520 * 96, 100));
        var (loss, lse, norms, dz) = (Device(gpu, new float[1]), Device(gpu, new float[520]), Device(gpu, new float[520]), Device(gpu, new float[520 * 96]));
        void Passes()
        {
            gpu.NtXentForward(loss, lse, norms, z, s);
            gpu.NtXentBackward(dz, z, lse, norms, s);
        }
        Passes();
        float[] direct = [.. Read(gpu, loss), .. Read(gpu, dz)];
        gpu.Fill(loss, 0);
        gpu.Fill(dz, 0);
        using var graph = gpu.Capture(Passes);
        graph.Launch();
        float[] replayed = [.. Read(gpu, loss), .. Read(gpu, dz)];
        Assert.Equal(direct, replayed);
    }
}
