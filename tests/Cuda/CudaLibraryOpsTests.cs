// The cuBLAS and cuDNN ops of CudaBackend against their CPU twins (CpuBackend<float>, which defines them):
// GEMM in every transpose combination, the three Linear ops (bias chunking past the ones vector included),
// the three convolution directions on odd shapes, batch norm training/inference/backward with running
// statistics and the accumulation rule, max pooling. FP32 within 1e-5 relative error, TF32 within 1e-3.
// Also: no device allocation once shapes are planned, and a captured graph replays the same result.
// Every test skips without a CUDA device.
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using static SimClr.Tests.Cuda.CudaTestSupport;

namespace SimClr.Tests.Cuda;

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class CudaLibraryOpsTests
{
    private const double Fp32 = 1e-5, Tf32 = 1e-3;

    public static TheoryData<int, int, int, Transpose, Transpose, double, double> GemmCases()
    {
        var data = new TheoryData<int, int, int, Transpose, Transpose, double, double>();
        foreach (var ta in new[] { Transpose.None, Transpose.Transposed })
            foreach (var tb in new[] { Transpose.None, Transpose.Transposed })
            {
                data.Add(1, 1, 1, ta, tb, 1.0, 0.0);
                data.Add(37, 29, 53, ta, tb, 0.75, 0.5);
                data.Add(130, 67, 259, ta, tb, -1.25, 1.0);
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void GemmMatchesCpu(int m, int n, int k, Transpose ta, Transpose tb, double alpha, double beta)
    {
        var gpu = Backend();
        var s = new GemmShape(m, n, k, ta, tb, alpha, beta);
        float[] a = Random(m * k, 1), b = Random(k * n, 2), c = Random(m * n, 3);
        var (ca, cb, cc) = (Host(a), Host(b), Host(c));
        var (ga, gb, gc) = (Device(gpu, a), Device(gpu, b), Device(gpu, c));
        CpuTwin.Gemm(cc, ca, cb, s);
        gpu.Gemm(gc, ga, gb, s);
        AssertTwin(gpu, gc, cc, $"gemm {s}", Fp32);
    }

    [Fact]
    public void Tf32GemmStaysWithinTf32Tolerance()
    {
        var gpu = Backend(CudaMathMode.Tf32);
        var s = new GemmShape(256, 192, 320, Transpose.None, Transpose.Transposed);
        float[] a = Random(s.M * s.K, 4), b = Random(s.K * s.N, 5);
        var cc = Host(new float[s.M * s.N]);
        var gc = Device(gpu, new float[s.M * s.N]);
        CpuTwin.Gemm(cc, Host(a), Host(b), s);
        gpu.Gemm(gc, Device(gpu, a), Device(gpu, b), s);
        AssertTwin(gpu, gc, cc, "tf32 gemm", Tf32);
    }

    [Theory]
    [InlineData(7, 13, 5, true)]
    [InlineData(64, 512, 128, true)]
    [InlineData(33, 17, 9, false)]
    // More rows than the ones vector holds: bias add and bias reduction run in chunks.
    [InlineData(65536 + 37, 3, 4, true)]
    public void LinearMatchesCpu(int batch, int inputs, int outputs, bool withBias)
    {
        var gpu = Backend();
        var s = new LinearShape(batch, inputs, outputs);
        float[] x = Random((long)batch * inputs, 10), w = Random((long)outputs * inputs, 11), bias = Random(outputs, 12);
        float[] dy = Random((long)batch * outputs, 13), dw0 = Random((long)outputs * inputs, 14), db0 = Random(outputs, 15);

        var cy = Host(new float[batch * outputs]);
        var gy = Device(gpu, new float[batch * outputs]);
        CpuTwin.LinearForward(cy, Host(x), Host(w), withBias ? Host(bias) : default, s);
        gpu.LinearForward(gy, Device(gpu, x), Device(gpu, w), withBias ? Device(gpu, bias) : default, s);
        AssertTwin(gpu, gy, cy, "linear forward", Fp32);

        var cdx = Host(new float[batch * inputs]);
        var gdx = Device(gpu, Random((long)batch * inputs, 16));
        CpuTwin.LinearBackwardData(cdx, Host(dy), Host(w), s);
        gpu.LinearBackwardData(gdx, Device(gpu, dy), Device(gpu, w), s);
        AssertTwin(gpu, gdx, cdx, "linear backward data", Fp32);

        // Parameter gradients accumulate: both start from the same non-zero values.
        var (cdw, cdb) = (Host(dw0), Host(db0));
        var (gdw, gdb) = (Device(gpu, dw0), Device(gpu, db0));
        CpuTwin.LinearBackwardWeights(cdw, withBias ? cdb : default, Host(dy), Host(x), s);
        gpu.LinearBackwardWeights(gdw, withBias ? gdb : default, Device(gpu, dy), Device(gpu, x), s);
        AssertTwin(gpu, gdw, cdw, "linear dw", Fp32);
        AssertTwin(gpu, gdb, cdb, "linear dbias", Fp32);
    }

    public static TheoryData<Conv2dShape> ConvolutionCases() =>
    [
        new Conv2dShape(2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1),
        new Conv2dShape(3, 4, 13, 7, 6, 3, 3, 2, 2, 1, 1),
        new Conv2dShape(2, 3, 17, 15, 8, 7, 7, 2, 2, 3, 3),
        new Conv2dShape(4, 8, 6, 6, 16, 1, 1, 2, 2, 0, 0),
        new Conv2dShape(1, 5, 10, 9, 3, 2, 3, 1, 2, 0, 1),
    ];

    [Theory]
    [MemberData(nameof(ConvolutionCases))]
    public void ConvolutionMatchesCpu(Conv2dShape s) => CheckConvolution(Backend(), s, Fp32);

    [Fact]
    public void Tf32ConvolutionStaysWithinTf32Tolerance() =>
        CheckConvolution(Backend(CudaMathMode.Tf32), new Conv2dShape(4, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1), Tf32);

    private static void CheckConvolution(CudaBackend gpu, Conv2dShape s, double tolerance)
    {
        float[] x = Random(s.InputElements, 20), w = Random(s.WeightElements, 21), dy = Random(s.OutputElements, 22), dw0 = Random(s.WeightElements, 23);

        var cy = Host(new float[s.OutputElements]);
        var gy = Device(gpu, Random(s.OutputElements, 24));
        CpuTwin.Conv2dForward(cy, Host(x), Host(w), s);
        gpu.Conv2dForward(gy, Device(gpu, x), Device(gpu, w), s);
        AssertTwin(gpu, gy, cy, $"conv forward {s}", tolerance);

        var cdx = Host(new float[s.InputElements]);
        var gdx = Device(gpu, Random(s.InputElements, 25));
        CpuTwin.Conv2dBackwardData(cdx, Host(dy), Host(w), s);
        gpu.Conv2dBackwardData(gdx, Device(gpu, dy), Device(gpu, w), s);
        AssertTwin(gpu, gdx, cdx, $"conv backward data {s}", tolerance);

        var cdw = Host(dw0);
        var gdw = Device(gpu, dw0);
        CpuTwin.Conv2dBackwardFilter(cdw, Host(dy), Host(x), s);
        gpu.Conv2dBackwardFilter(gdw, Device(gpu, dy), Device(gpu, x), s);
        AssertTwin(gpu, gdw, cdw, $"conv backward filter (accumulating) {s}", tolerance);
    }

    [Theory]
    [InlineData(4, 3, 25)]
    [InlineData(8, 16, 1)]
    [InlineData(3, 5, 49)]
    public void BatchNormMatchesCpu(int batch, int channels, int spatial)
    {
        var gpu = Backend();
        var s = new BatchNormShape(batch, channels, spatial, 1e-5, 0.1);
        long n = s.Elements;
        float[] x = Random(n, 30, -2f, 3f), gamma = Random(channels, 31, 0.5f, 1.5f), beta = Random(channels, 32);
        float[] runMean = Random(channels, 33), runVar = Random(channels, 34, 0.5f, 2f), dy = Random(n, 35);
        float[] dgamma0 = Random(channels, 36), dbeta0 = Random(channels, 37);

        var (cy, cMean, cInv, cRunMean, cRunVar) = (Host(new float[n]), Host(new float[channels]), Host(new float[channels]), Host(runMean), Host(runVar));
        var (gy, gMean, gInv, gRunMean, gRunVar) = (Device(gpu, new float[n]), Device(gpu, new float[channels]), Device(gpu, new float[channels]), Device(gpu, runMean), Device(gpu, runVar));
        var (cx, cGamma, cBeta) = (Host(x), Host(gamma), Host(beta));
        var (gx, gGamma, gBeta) = (Device(gpu, x), Device(gpu, gamma), Device(gpu, beta));

        CpuTwin.BatchNormForwardTraining(cy, cMean, cInv, cRunMean, cRunVar, cx, cGamma, cBeta, s);
        gpu.BatchNormForwardTraining(gy, gMean, gInv, gRunMean, gRunVar, gx, gGamma, gBeta, s);
        AssertTwin(gpu, gy, cy, "bn forward", Fp32);
        AssertTwin(gpu, gMean, cMean, "bn saved mean", Fp32);
        AssertTwin(gpu, gInv, cInv, "bn saved inverse std", Fp32);
        AssertTwin(gpu, gRunMean, cRunMean, "bn running mean", Fp32);
        AssertTwin(gpu, gRunVar, cRunVar, "bn running variance (unbiased)", Fp32);

        var ci = Host(new float[n]);
        var gi = Device(gpu, new float[n]);
        CpuTwin.BatchNormForwardInference(ci, cx, cGamma, cBeta, cRunMean, cRunVar, s);
        gpu.BatchNormForwardInference(gi, gx, gGamma, gBeta, gRunMean, gRunVar, s);
        AssertTwin(gpu, gi, ci, "bn inference", Fp32);

        var (cdx, cdg, cdb) = (Host(new float[n]), Host(dgamma0), Host(dbeta0));
        var (gdx, gdg, gdb) = (Device(gpu, Random(n, 38)), Device(gpu, dgamma0), Device(gpu, dbeta0));
        CpuTwin.BatchNormBackward(cdx, cdg, cdb, Host(dy), cx, cGamma, cMean, cInv, s);
        gpu.BatchNormBackward(gdx, gdg, gdb, Device(gpu, dy), gx, gGamma, gMean, gInv, s);
        AssertTwin(gpu, gdx, cdx, "bn dx", Fp32);
        AssertTwin(gpu, gdg, cdg, "bn dgamma (accumulating)", Fp32);
        AssertTwin(gpu, gdb, cdb, "bn dbeta (accumulating)", Fp32);
    }

    [Theory]
    [InlineData(2, 3, 9, 11, 3, 2, 1)]
    [InlineData(3, 4, 8, 8, 2, 2, 0)]
    [InlineData(1, 2, 7, 10, 3, 1, 1)]
    public void MaxPoolMatchesCpu(int batch, int channels, int height, int width, int window, int stride, int pad)
    {
        var gpu = Backend();
        var s = new PoolShape(batch, channels, height, width, window, stride, pad);
        long inElements = (long)batch * channels * height * width, outElements = (long)batch * channels * s.OutHeight * s.OutWidth;
        // Distinct values: ties would make "which maximum gets the gradient" a matter of convention.
        var x = Random(inElements, 40);
        float[] dy = Random(outElements, 41);

        var (cx, cy) = (Host(x), Host(new float[outElements]));
        var (gx, gy) = (Device(gpu, x), Device(gpu, new float[outElements]));
        CpuTwin.MaxPoolForward(cy, cx, s);
        gpu.MaxPoolForward(gy, gx, s);
        AssertTwin(gpu, gy, cy, "max pool forward", 0);

        var cdx = Host(new float[inElements]);
        var gdx = Device(gpu, Random(inElements, 42));
        CpuTwin.MaxPoolBackward(cdx, Host(dy), cy, cx, s);
        gpu.MaxPoolBackward(gdx, Device(gpu, dy), gy, gx, s);
        AssertTwin(gpu, gdx, cdx, "max pool backward", Fp32);
    }

    [Fact]
    public void MaxPoolTiesRouteTheGradientLikeTheCpuTwin()
    {
        // After ReLU whole windows are zero: the contract gives each dy to the first maximum in scan order.
        var gpu = Backend();
        var s = new PoolShape(2, 3, 10, 10, 3, 2, 1);
        long inElements = 2L * 3 * 10 * 10, outElements = 2L * 3 * s.OutHeight * s.OutWidth;
        var x = Random(inElements, 43).Select(v => Math.Max(v, 0f)).ToArray();
        float[] dy = Random(outElements, 44);

        var (cx, cy) = (Host(x), Host(new float[outElements]));
        var (gx, gy) = (Device(gpu, x), Device(gpu, new float[outElements]));
        CpuTwin.MaxPoolForward(cy, cx, s);
        gpu.MaxPoolForward(gy, gx, s);
        var cdx = Host(new float[inElements]);
        var gdx = Device(gpu, new float[inElements]);
        CpuTwin.MaxPoolBackward(cdx, Host(dy), cy, cx, s);
        gpu.MaxPoolBackward(gdx, Device(gpu, dy), gy, gx, s);
        AssertTwin(gpu, gdx, cdx, "max pool backward with tied maxima", Fp32);
    }

    [Fact]
    public void PlannedOpsDoNotAllocate()
    {
        var gpu = Backend();
        var conv = new Conv2dShape(2, 4, 12, 12, 8, 3, 3, 1, 1, 1, 1);
        var bn = new BatchNormShape(2, 8, 144);
        var linear = new LinearShape(16, 32, 8);
        var x = Device(gpu, Random(conv.InputElements, 50));
        var w = Device(gpu, Random(conv.WeightElements, 51));
        var y = Device(gpu, new float[conv.OutputElements]);
        var dw = Device(gpu, new float[conv.WeightElements]);
        var dx = Device(gpu, new float[conv.InputElements]);
        // saveMean, saveInvStd, runningMean, runningVar, gamma, beta, dgamma, dbeta
        var stats = Enumerable.Range(0, 8).Select(i => Device(gpu, Random(bn.Channels, 52 + i, 0.5f, 1.5f))).ToArray();
        var bnOut = Device(gpu, new float[bn.Elements]);
        var bnGrad = Device(gpu, new float[bn.Elements]);
        var lx = Device(gpu, Random(linear.Batch * linear.In, 60));
        var lw = Device(gpu, Random(linear.Out * linear.In, 61));
        var lb = Device(gpu, Random(linear.Out, 62));
        var ly = Device(gpu, new float[linear.Batch * linear.Out]);

        void Step()
        {
            gpu.Conv2dForward(y, x, w, conv);
            gpu.BatchNormForwardTraining(bnOut, stats[0], stats[1], stats[2], stats[3], y, stats[4], stats[5], bn);
            gpu.BatchNormBackward(bnGrad, stats[6], stats[7], bnOut, y, stats[4], stats[0], stats[1], bn);
            gpu.Conv2dBackwardData(dx, bnGrad, w, conv);
            gpu.Conv2dBackwardFilter(dw, bnGrad, x, conv);
            gpu.LinearForward(ly, lx, lw, lb, linear);
            gpu.LinearBackwardWeights(lw, lb, ly, lx, linear);
        }

        AssertNoAllocationsAfterWarmUp(gpu, Step);
    }

    [Fact]
    public void CapturedGraphReplaysTheSameResult()
    {
        var gpu = Backend();
        var s = new GemmShape(48, 40, 56, Transpose.Transposed, Transpose.None);
        float[] a = Random(s.M * s.K, 70), b = Random(s.K * s.N, 71);
        var (ga, gb) = (Device(gpu, a), Device(gpu, b));
        var direct = Device(gpu, new float[s.M * s.N]);
        var replayed = Device(gpu, new float[s.M * s.N]);
        gpu.Gemm(direct, ga, gb, s);
        using var graph = gpu.Capture(() => gpu.Gemm(replayed, ga, gb, s));
        Assert.Equal(new float[s.M * s.N], Read(gpu, replayed));
        graph.Launch();
        Assert.Equal(Read(gpu, direct), Read(gpu, replayed));
    }

    [Fact]
    public void EventsTimeQueuedWork()
    {
        var gpu = Backend();
        using var start = gpu.CreateEvent(EventTiming.Enabled);
        using var end = gpu.CreateEvent(EventTiming.Enabled);
        var s = new GemmShape(512, 512, 512);
        var (a, b, c) = (Device(gpu, Random(s.M * s.K, 80)), Device(gpu, Random(s.K * s.N, 81)), Device(gpu, new float[s.M * s.N]));
        start.Record();
        gpu.Gemm(c, a, b, s);
        end.Record();
        end.Synchronize();
        Assert.True(end.IsComplete);
        Assert.True(end.ElapsedMillisecondsSince(start) >= 0);
    }

    [Fact]
    public void PinnedAsyncDownloadMatchesSynchronousDownload()
    {
        var gpu = Backend();
        var values = Random(1000, 90);
        var device = Device(gpu, values);
        using var pinned = gpu.AllocatePinned<float>(values.Length);
        using var done = gpu.CreateEvent();
        gpu.DownloadAsync(pinned.AsTensor(), device);
        done.Record();
        done.Synchronize();
        Assert.Equal(values, pinned.HostSpan(0, values.Length).ToArray());
    }

    [Fact]
    public void DisposingTheBackendReleasesItsChildren()
    {
        Backend();
        var own = new CudaBackend();
        var storage = own.Allocate<float>(1024);
        var evt = own.CreateEvent();
        own.Dispose();
        own.Dispose();
        Assert.True(storage.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => own.Allocate<float>(1));
        evt.Dispose();
    }
}
