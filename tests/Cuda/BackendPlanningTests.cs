// The CUDA backend's decisions that need no GPU, checked on the CPU: which cuDNN convolution algorithm is
// taken from a ranking (determinism, FMA-only FP32, workspace limit), and when the augment kernel must opt in
// to more shared memory given its real static shared memory (read from NVRTC's PTX).
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Launch;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

public partial class BackendPlanningTests
{
    private static CudnnConvolutionAlgoPerf Perf(int algorithm, CudnnMathType math, CudnnDeterminism determinism, long memory = 1024,
        CudnnStatus status = CudnnStatus.Success) =>
        new() { Algorithm = algorithm, MathType = math, Determinism = determinism, Memory = (nuint)memory, Status = status };

    [Fact]
    public void ReproducibleFp32TakesTheBestDeterministicFmaAlgorithm()
    {
        CudnnConvolutionAlgoPerf[] ranked =
        [
            Perf(7, CudnnMathType.TensorOp, CudnnDeterminism.Deterministic),
            Perf(0, CudnnMathType.Fma, CudnnDeterminism.NonDeterministic),
            Perf(5, CudnnMathType.Fma, CudnnDeterminism.Deterministic, status: CudnnStatus.NotSupported),
            Perf(4, CudnnMathType.Fma, CudnnDeterminism.Deterministic, memory: 4L << 30),
            Perf(1, CudnnMathType.Default, CudnnDeterminism.Deterministic),
            Perf(2, CudnnMathType.Fma, CudnnDeterminism.Deterministic),
        ];
        var choice = CudaBackend.ChooseAlgorithm(ranked, CudaMathMode.Fp32, ConvolutionAlgorithms.Reproducible);
        // Tensor ops (TF32), non-deterministic, failed and over-budget results are passed over; a DEFAULT-math
        // result is taken but the descriptor is set to FMA, never left at DEFAULT (which permits TF32).
        Assert.Equal(new CudaBackend.AlgorithmChoice(1, CudnnMathType.Fma), choice);
    }

    [Fact]
    public void FastestTakesTheFastestNonTensorOpAlgorithmInFp32()
    {
        CudnnConvolutionAlgoPerf[] ranked =
        [
            Perf(7, CudnnMathType.TensorOpAllowConversion, CudnnDeterminism.Deterministic),
            Perf(0, CudnnMathType.Fma, CudnnDeterminism.NonDeterministic),
            Perf(1, CudnnMathType.Fma, CudnnDeterminism.Deterministic),
        ];
        Assert.Equal(new CudaBackend.AlgorithmChoice(0, CudnnMathType.Fma), CudaBackend.ChooseAlgorithm(ranked, CudaMathMode.Fp32, ConvolutionAlgorithms.Fastest));
    }

    [Fact]
    public void Tf32KeepsTheMathTypeTheAlgorithmWasRankedWith()
    {
        CudnnConvolutionAlgoPerf[] ranked =
        [
            Perf(6, CudnnMathType.TensorOp, CudnnDeterminism.NonDeterministic),
            Perf(3, CudnnMathType.TensorOp, CudnnDeterminism.Deterministic),
        ];
        Assert.Equal(new CudaBackend.AlgorithmChoice(3, CudnnMathType.TensorOp), CudaBackend.ChooseAlgorithm(ranked, CudaMathMode.Tf32, ConvolutionAlgorithms.Reproducible));
        Assert.Equal(new CudaBackend.AlgorithmChoice(6, CudnnMathType.TensorOp), CudaBackend.ChooseAlgorithm(ranked, CudaMathMode.Tf32, ConvolutionAlgorithms.Fastest));
    }

    [Fact]
    public void NothingAcceptableIsNull()
    {
        CudnnConvolutionAlgoPerf[] ranked = [Perf(0, CudnnMathType.Fma, CudnnDeterminism.NonDeterministic), Perf(1, CudnnMathType.TensorOp, CudnnDeterminism.Deterministic)];
        Assert.Null(CudaBackend.ChooseAlgorithm(ranked, CudaMathMode.Fp32, ConvolutionAlgorithms.Reproducible));
        Assert.Null(CudaBackend.ChooseAlgorithm([], CudaMathMode.Fp32, ConvolutionAlgorithms.Fastest));
    }

    [GeneratedRegex(@"\.shared\s+(?:\.align\s+\d+\s+)?\.\w+\s+\w+\[(\d+)\]")]
    private static partial Regex SharedArray();

    /// <summary>augment_views has static shared memory (its draws and reduction scratch), and the 48 KiB default
    /// and the opt-in ceiling bound static + dynamic: dynamic sizes just under those limits alone must opt in,
    /// or be refused. Counting the dynamic part alone (as the launcher once did) gets both wrong.</summary>
    [Fact]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
    public void AugmentSharedMemoryCountsTheStaticPart()
    {
        NvrtcCompileTests.RequireNvrtc();
        var ptx = NvrtcCompiler.Compile("augment", "compute_90");
        var entry = ptx[ptx.IndexOf(".entry augment_views", StringComparison.Ordinal)..];
        int staticBytes = SharedArray().Matches(entry[..entry.IndexOf("\n}", StringComparison.Ordinal)]).Sum(m => int.Parse(m.Groups[1].Value));
        Assert.True(staticBytes > 0, "augment_views declares static shared memory");

        const int hopperOptIn = 227 * 1024;
        int justBelowDefault = KernelGrids.DefaultSharedBytes - staticBytes / 2;
        Assert.Equal((true, (string?)null), KernelGrids.DynamicSharedMemory(staticBytes, justBelowDefault, hopperOptIn));
        Assert.Equal((false, (string?)null), KernelGrids.DynamicSharedMemory(staticBytes, KernelGrids.DefaultSharedBytes - staticBytes, hopperOptIn));
        var (optIn, refusal) = KernelGrids.DynamicSharedMemory(staticBytes, hopperOptIn - staticBytes / 2, hopperOptIn);
        Assert.False(optIn);
        Assert.Contains($"besides its {staticBytes} static bytes", refusal);
        // The CIFAR and ImageNet outputs are far from either limit.
        Assert.False(KernelGrids.DynamicSharedMemory(staticBytes, CudaBackend.AugmentSharedBytes(224, 224), hopperOptIn).OptIn);
    }
}
