// Sizes and hyper-parameters of the ops, one small struct each, shared by both backends
// (the Darknet lesson: CPU and GPU twins read the same struct of sizes). Constructors validate,
// so a bad size fails at plan time with a message rather than inside a kernel.
using System.Runtime.InteropServices;

namespace SimClr.Kernels;

public enum Transpose { None, Transposed }

/// <summary>Row-major C[M,N] = Alpha·op(A)·op(B) + Beta·C, op(A) is M×K, op(B) is K×N.</summary>
public readonly record struct GemmShape(int M, int N, int K, Transpose TransA = Transpose.None, Transpose TransB = Transpose.None, double Alpha = 1.0, double Beta = 0.0)
{
    public long Flops => 2L * M * N * K;
}

/// <summary>y[N,Out] = x[N,In]·Wᵀ + b, with W stored [Out,In] as in PyTorch.</summary>
public readonly record struct LinearShape(int Batch, int In, int Out);

/// <summary>NCHW convolution, weights [Cout, Cin, KH, KW], no groups, no dilation.</summary>
public readonly record struct Conv2dShape(int Batch, int InChannels, int InHeight, int InWidth, int OutChannels,
    int KernelH, int KernelW, int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0)
{
    public int OutHeight => (InHeight + 2 * PadH - KernelH) / StrideH + 1;
    public int OutWidth => (InWidth + 2 * PadW - KernelW) / StrideW + 1;
    public long InputElements => (long)Batch * InChannels * InHeight * InWidth;
    public long OutputElements => (long)Batch * OutChannels * OutHeight * OutWidth;
    public long WeightElements => (long)OutChannels * InChannels * KernelH * KernelW;
    public long Flops => 2L * Batch * OutChannels * OutHeight * OutWidth * InChannels * KernelH * KernelW;

    public void Validate()
    {
        if (Batch <= 0 || InChannels <= 0 || InHeight <= 0 || InWidth <= 0 || OutChannels <= 0 || KernelH <= 0 || KernelW <= 0 || StrideH <= 0 || StrideW <= 0 || PadH < 0 || PadW < 0)
            throw new ArgumentException($"invalid convolution {this}");
        if (OutHeight <= 0 || OutWidth <= 0)
            throw new ArgumentException($"convolution {this} has an empty output");
    }
}

/// <summary>Batch norm over [N, C, Spatial] (Spatial = H·W for 2d, 1 for 1d). Momentum follows PyTorch:
/// running = (1-Momentum)·running + Momentum·batch, with the unbiased variance for the running estimate.</summary>
public readonly record struct BatchNormShape(int Batch, int Channels, int Spatial, double Epsilon = 1e-5, double Momentum = 0.1)
{
    public long Elements => (long)Batch * Channels * Spatial;
}

/// <summary>NCHW max pooling (ResNet's stem uses 3×3, stride 2, padding 1).</summary>
public readonly record struct PoolShape(int Batch, int Channels, int InHeight, int InWidth, int Window = 3, int Stride = 2, int Pad = 1)
{
    public int OutHeight => (InHeight + 2 * Pad - Window) / Stride + 1;
    public int OutWidth => (InWidth + 2 * Pad - Window) / Stride + 1;
}

/// <summary>A [Rows, Cols] matrix processed row by row (L2 normalize, softmax).</summary>
public readonly record struct RowsShape(int Rows, int Cols, double Epsilon = 1e-12);

/// <summary>NT-Xent over z[Rows, Dim] with Rows = 2N; row i's positive is row (i + N) mod 2N.
/// The loss is the mean over all rows of -s(i,pos) + log Σ_{j≠i} exp s(i,j), s = ẑᵢ·ẑⱼ/τ.
/// Rows-subset mode (data parallelism): z holds the views of every rank, all-gathered rank by rank, so the
/// rows form blocks of 2·<see cref="PairBlock"/> rows, each block [view 0 of P samples; view 1 of the same P],
/// and row i's positive is the other view of its sample, i ± P inside its block (one block, P = N, is the
/// single-process layout). A call computes only rows [<see cref="RowStart"/>, RowStart + <see cref="RowCount"/>)
/// against all Rows columns: the forward writes their log-sum-exps and their share Σ_own terms / Rows of the
/// mean loss (so the ranks' shares sum to it), the backward writes their dz only.</summary>
public readonly record struct NtXentShape(int Rows, int Dim, double Temperature, double Epsilon = 1e-12)
{
    /// <summary>The first row this call computes (0 unless in rows-subset mode).</summary>
    public int RowStart { get; init; }

    /// <summary>How many rows this call computes; 0 (the default) means all Rows.</summary>
    public int RowCount { get => field == 0 ? Rows : field; init; }

    /// <summary>Positive pairs per block; 0 (the default) means Rows / 2, one block.</summary>
    public int PairBlock { get => field == 0 ? Rows / 2 : field; init; }

    /// <summary>The positive of <paramref name="row"/>: the other view of the same sample in its block.</summary>
    public int PositiveOf(int row)
    {
        int p = PairBlock;
        return row % (2 * p) < p ? row + p : row - p;
    }

    public void Validate()
    {
        if (Rows < 2 || Rows % 2 != 0) throw new ArgumentException($"NT-Xent needs an even number of rows (2N, N ≥ 1), got {Rows}");
        if (Dim <= 0) throw new ArgumentException($"NT-Xent needs Dim > 0, got {Dim}");
        if (!(Temperature > 0) || double.IsInfinity(Temperature)) throw new ArgumentException($"NT-Xent needs a temperature > 0, got {Temperature}");
        if (PairBlock <= 0 || Rows % (2 * PairBlock) != 0) throw new ArgumentException($"NT-Xent needs Rows ({Rows}) to be whole blocks of 2·PairBlock ({PairBlock}) rows");
        if (RowStart < 0 || RowCount <= 0 || (long)RowStart + RowCount > Rows) throw new ArgumentException($"NT-Xent rows [{RowStart}, {(long)RowStart + RowCount}) are not inside the {Rows} rows");
    }
}

/// <summary>Logits [Batch, Classes]; labels are int32 in [0, Classes).</summary>
public readonly record struct ClassShape(int Batch, int Classes);

/// <summary>Per-tensor flags of a parameter segment.</summary>
[Flags]
public enum SegmentFlags
{
    None = 0,
    /// <summary>No weight decay (BN parameters and biases in SimCLR).</summary>
    NoWeightDecay = 1,
    /// <summary>No LARS trust-ratio adaptation (plain momentum SGD step).</summary>
    NoAdaptation = 2,
}

/// <summary>One tensor inside the flat parameter buffer. Blittable: the CUDA kernels read the same bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 8)]
public readonly record struct ParamSegment(long Offset, long Length, SegmentFlags Flags)
{
    private readonly int _pad = 0;
}

/// <summary>LARS as in SimCLR's reference: g' = g + wd·w (unless excluded); trust = η‖w‖/‖g'‖ when both
/// norms are positive, else 1 (and 1 for excluded tensors); v = m·v + lr·trust·g'; w -= v.</summary>
public readonly record struct LarsHyper(double LearningRate, double Momentum = 0.9, double WeightDecay = 1e-6, double TrustCoefficient = 1e-3);

public enum MomentumKind { Classic, Nesterov }

/// <summary>SGD with momentum: g' = g + wd·w (unless excluded); v = m·v + g'; w -= lr·v (Nesterov: w -= lr·(g' + m·v)).</summary>
public readonly record struct SgdHyper(double LearningRate, double Momentum = 0.9, double WeightDecay = 0.0, MomentumKind Kind = MomentumKind.Classic);
