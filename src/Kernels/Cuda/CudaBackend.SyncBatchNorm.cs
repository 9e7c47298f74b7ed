// Launchers of kernels/syncbn.cu, the synchronized batch norm of data parallelism: BN's training forward and
// backward split at their per-channel reductions (IBackend's SyncBatchNorm ops), so that a communicator sums the
// double sums[2C + 1] of every rank between the two launches of each pair. The per-channel reductions take one
// block per channel; the element-wise halves a (channel, chunk) grid sized by SyncBatchNormChunks. Same
// conventions as CudaBackend.Kernels.cs: argument checks, arguments through a stack-allocated pointer array, every
// launch queued on the backend's stream, nothing synchronizes or allocates.
using System.Runtime.CompilerServices;
using SimClr.Kernels.Cuda.Launch;

namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private SyncBatchNormKernels _sbn;

    private struct SyncBatchNormKernels
    {
        public CudaFunction Stats, Forward, BackwardReduce, Backward;
    }

    /// <summary>Blocks per channel of syncbn_fwd and syncbn_bwd: about eight blocks per SM in all, never more than
    /// the channel's elements need (one element per thread), at most 65535 (the grid's y limit).</summary>
    internal static int SyncBatchNormChunks(long elementsPerChannel, int channels, int multiprocessors)
    {
        long needed = Math.Max(1, (elementsPerChannel + KernelGrids.Block - 1) / KernelGrids.Block);
        long wanted = Math.Max(1, (8L * multiprocessors + channels - 1) / channels);
        return (int)Math.Min(Math.Min(needed, wanted), KernelGrids.MaxGridY);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CheckSyncBatchNorm(in BatchNormShape s, string op)
    {
        RequirePositive(s.Batch, "Batch", op); RequirePositive(s.Channels, "Channels", op); RequirePositive(s.Spatial, "Spatial", op);
        RequireEpsilon(s.Epsilon, op);
        if (!(s.Momentum >= 0 && s.Momentum <= 1)) throw new ArgumentException($"{op}: Momentum must lie in [0, 1], got {s.Momentum}", nameof(s));
    }

    public unsafe void SyncBatchNormStatistics(Tensor<double> sums, Tensor<float> x, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormStatistics);
        CheckSyncBatchNorm(s, op);
        nint pSums = Arg(sums, 2L * s.Channels + 1, nameof(sums), op), px = Arg(x, s.Elements, nameof(x), op);
        int batch = s.Batch, channels = s.Channels, spatial = s.Spatial;
        void** args = stackalloc void*[] { &pSums, &px, &batch, &channels, &spatial };
        Launch(Kernel(ref _sbn.Stats, "syncbn", "syncbn_stats"), new Dim3((uint)channels), KernelBlock, 0, args);
    }

    public unsafe void SyncBatchNormForward(Tensor<float> y, Tensor<float> saveMean, Tensor<float> saveInvStd, Tensor<float> runningMean, Tensor<float> runningVar,
        Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, Tensor<double> sums, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormForward);
        CheckSyncBatchNorm(s, op);
        int batch = s.Batch, channels = s.Channels, spatial = s.Spatial;
        nint py = Arg(y, s.Elements, nameof(y), op), pMean = Arg(saveMean, channels, nameof(saveMean), op), pInvStd = Arg(saveInvStd, channels, nameof(saveInvStd), op);
        nint pRunMean = Arg(runningMean, channels, nameof(runningMean), op), pRunVar = Arg(runningVar, channels, nameof(runningVar), op);
        nint px = Arg(x, s.Elements, nameof(x), op), pGamma = Arg(gamma, channels, nameof(gamma), op), pBeta = Arg(beta, channels, nameof(beta), op);
        nint pSums = Arg(sums, 2L * channels + 1, nameof(sums), op);
        float eps = (float)s.Epsilon, momentum = (float)s.Momentum;
        int chunks = SyncBatchNormChunks((long)batch * spatial, channels, MultiprocessorCount);
        void** args = stackalloc void*[] { &py, &pMean, &pInvStd, &pRunMean, &pRunVar, &px, &pGamma, &pBeta, &pSums, &batch, &channels, &spatial, &eps, &momentum };
        Launch(Kernel(ref _sbn.Forward, "syncbn", "syncbn_fwd"), new Dim3((uint)channels, (uint)chunks), KernelBlock, 0, args);
    }

    public unsafe void SyncBatchNormBackwardReduce(Tensor<double> sums, Tensor<float> dgamma, Tensor<float> dbeta, Tensor<float> dy, Tensor<float> x,
        Tensor<float> saveMean, Tensor<float> saveInvStd, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormBackwardReduce);
        CheckSyncBatchNorm(s, op);
        int batch = s.Batch, channels = s.Channels, spatial = s.Spatial;
        nint pSums = Arg(sums, 2L * channels + 1, nameof(sums), op), pdGamma = Arg(dgamma, channels, nameof(dgamma), op), pdBeta = Arg(dbeta, channels, nameof(dbeta), op);
        nint pdy = Arg(dy, s.Elements, nameof(dy), op), px = Arg(x, s.Elements, nameof(x), op);
        nint pMean = Arg(saveMean, channels, nameof(saveMean), op), pInvStd = Arg(saveInvStd, channels, nameof(saveInvStd), op);
        void** args = stackalloc void*[] { &pSums, &pdGamma, &pdBeta, &pdy, &px, &pMean, &pInvStd, &batch, &channels, &spatial };
        Launch(Kernel(ref _sbn.BackwardReduce, "syncbn", "syncbn_bwd_reduce"), new Dim3((uint)channels), KernelBlock, 0, args);
    }

    public unsafe void SyncBatchNormBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> x, Tensor<float> gamma, Tensor<float> saveMean, Tensor<float> saveInvStd,
        Tensor<double> sums, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormBackward);
        CheckSyncBatchNorm(s, op);
        int batch = s.Batch, channels = s.Channels, spatial = s.Spatial;
        nint pdx = Arg(dx, s.Elements, nameof(dx), op), pdy = Arg(dy, s.Elements, nameof(dy), op), px = Arg(x, s.Elements, nameof(x), op);
        nint pGamma = Arg(gamma, channels, nameof(gamma), op), pMean = Arg(saveMean, channels, nameof(saveMean), op), pInvStd = Arg(saveInvStd, channels, nameof(saveInvStd), op);
        nint pSums = Arg(sums, 2L * channels + 1, nameof(sums), op);
        int chunks = SyncBatchNormChunks((long)batch * spatial, channels, MultiprocessorCount);
        void** args = stackalloc void*[] { &pdx, &pdy, &px, &pGamma, &pMean, &pInvStd, &pSums, &batch, &channels, &spatial };
        Launch(Kernel(ref _sbn.Backward, "syncbn", "syncbn_bwd"), new Dim3((uint)channels, (uint)chunks), KernelBlock, 0, args);
    }
}
