// The backend contract: an allocator and the short list of ops SimCLR needs. Every op comes as a
// forward/backward pair with one argument order: outputs, inputs, saved values, sizes.
// Accumulation rule for every backward: parameter gradients (dw, dgamma, dbeta, dbias) are ADDED to,
// activation gradients (dx) are OVERWRITTEN. Ops never allocate device memory; callers pass every
// buffer, including scratch. The CPU backend defines the semantics; CUDA kernels are checked against it.
using System.Numerics;

namespace SimClr.Kernels;

/// <summary>What a backend is, for logs and the `info` command.</summary>
public sealed record BackendInfo(DeviceKind Device, string Name, string Description);

public interface IBackend<T> : IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    BackendInfo Info { get; }

    // ---- memory ------------------------------------------------------------------------------
    /// <summary>Zero-filled storage of <paramref name="length"/> elements.</summary>
    Storage<U> Allocate<U>(long length) where U : unmanaged;
    void Upload<U>(Tensor<U> dst, ReadOnlySpan<U> src) where U : unmanaged;
    void Download<U>(Span<U> dst, Tensor<U> src) where U : unmanaged;
    /// <summary>Waits for all queued work. The CPU backend is synchronous.</summary>
    void Synchronize();

    // ---- element-wise (over Length of the first argument) -------------------------------------
    void Fill(Tensor<T> x, double value);
    void Copy(Tensor<T> dst, Tensor<T> src);
    /// <summary>x ← alpha·x.</summary>
    void Scale(Tensor<T> x, double alpha);
    /// <summary>y ← y + alpha·x.</summary>
    void Axpy(Tensor<T> y, double alpha, Tensor<T> x);
    /// <summary>y ← a + b (y may alias a or b).</summary>
    void Add(Tensor<T> y, Tensor<T> a, Tensor<T> b);
    /// <summary>y ← max(x, 0) (y may alias x: the layers run ReLU in place over a BatchNorm output).</summary>
    void ReluForward(Tensor<T> y, Tensor<T> x);
    /// <summary>dx ← dy·[y &gt; 0].</summary>
    void ReluBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y);

    // ---- dense -------------------------------------------------------------------------------
    void Gemm(Tensor<T> c, Tensor<T> a, Tensor<T> b, in GemmShape s);
    /// <summary>y = x·Wᵀ + bias; bias may be empty.</summary>
    void LinearForward(Tensor<T> y, Tensor<T> x, Tensor<T> w, Tensor<T> bias, in LinearShape s);
    /// <summary>dx = dy·W.</summary>
    void LinearBackwardData(Tensor<T> dx, Tensor<T> dy, Tensor<T> w, in LinearShape s);
    /// <summary>dw += dyᵀ·x; dbias += Σ_rows dy (dbias may be empty).</summary>
    void LinearBackwardWeights(Tensor<T> dw, Tensor<T> dbias, Tensor<T> dy, Tensor<T> x, in LinearShape s);

    // ---- convolution (NCHW) ------------------------------------------------------------------
    void Conv2dForward(Tensor<T> y, Tensor<T> x, Tensor<T> w, in Conv2dShape s);
    /// <summary>dx = conv_transpose(dy, w).</summary>
    void Conv2dBackwardData(Tensor<T> dx, Tensor<T> dy, Tensor<T> w, in Conv2dShape s);
    /// <summary>dw += correlation(x, dy).</summary>
    void Conv2dBackwardFilter(Tensor<T> dw, Tensor<T> dy, Tensor<T> x, in Conv2dShape s);

    // ---- batch norm over [N, C, Spatial] -----------------------------------------------------
    /// <summary>Batch statistics; saves mean and 1/sqrt(var+eps) (biased var) and updates the running
    /// statistics in place (unbiased var).</summary>
    void BatchNormForwardTraining(Tensor<T> y, Tensor<T> saveMean, Tensor<T> saveInvStd, Tensor<T> runningMean, Tensor<T> runningVar,
        Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, in BatchNormShape s);
    void BatchNormForwardInference(Tensor<T> y, Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, Tensor<T> runningMean, Tensor<T> runningVar, in BatchNormShape s);
    /// <summary>dx overwritten; dgamma, dbeta added to.</summary>
    void BatchNormBackward(Tensor<T> dx, Tensor<T> dgamma, Tensor<T> dbeta, Tensor<T> dy, Tensor<T> x, Tensor<T> gamma,
        Tensor<T> saveMean, Tensor<T> saveInvStd, in BatchNormShape s);

    // ---- synchronized batch norm (data parallelism) ------------------------------------------
    // The training forward and the backward split at their reductions, so that a communicator can sum the
    // per-channel reductions of every rank in between. sums[2·Channels + 1] is double whatever T is:
    // [Σ per channel, Σ per channel, element count]. One rank alone: Statistics then Forward computes what
    // BatchNormForwardTraining does, BackwardReduce then Backward what BatchNormBackward does (to rounding).
    /// <summary>sums = [Σx, Σx², Batch·Spatial] over this rank's x, accumulated in double.</summary>
    void SyncBatchNormStatistics(Tensor<double> sums, Tensor<T> x, in BatchNormShape s);
    /// <summary>BatchNormForwardTraining with the batch mean and biased variance taken from <paramref name="sums"/>
    /// (summed over the ranks); running statistics updated with the unbiased variance of that count.</summary>
    void SyncBatchNormForward(Tensor<T> y, Tensor<T> saveMean, Tensor<T> saveInvStd, Tensor<T> runningMean, Tensor<T> runningVar,
        Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, Tensor<double> sums, in BatchNormShape s);
    /// <summary>sums = [Σdy, Σdy·(x − mean), Batch·Spatial] over this rank; dgamma += Σdy·x̂ and dbeta += Σdy over this rank.</summary>
    void SyncBatchNormBackwardReduce(Tensor<double> sums, Tensor<T> dgamma, Tensor<T> dbeta, Tensor<T> dy, Tensor<T> x,
        Tensor<T> saveMean, Tensor<T> saveInvStd, in BatchNormShape s);
    /// <summary>dx overwritten: the gradient through the batch statistics, with the reductions taken from
    /// <paramref name="sums"/> (summed over the ranks).</summary>
    void SyncBatchNormBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> x, Tensor<T> gamma, Tensor<T> saveMean, Tensor<T> saveInvStd,
        Tensor<double> sums, in BatchNormShape s);

    // ---- pooling -----------------------------------------------------------------------------
    void MaxPoolForward(Tensor<T> y, Tensor<T> x, in PoolShape s);
    /// <summary>Each dy goes to the first maximum of its window (row-major scan order).</summary>
    void MaxPoolBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y, Tensor<T> x, in PoolShape s);
    /// <summary>y[N,C] = mean over Spatial of x[N,C,Spatial].</summary>
    void GlobalAvgPoolForward(Tensor<T> y, Tensor<T> x, int batch, int channels, int spatial);
    void GlobalAvgPoolBackward(Tensor<T> dx, Tensor<T> dy, int batch, int channels, int spatial);

    // ---- SimCLR ------------------------------------------------------------------------------
    /// <summary>y = x / max(‖x‖, eps) per row; saves the norms.</summary>
    void L2NormalizeForward(Tensor<T> y, Tensor<T> norms, Tensor<T> x, in RowsShape s);
    void L2NormalizeBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y, Tensor<T> norms, in RowsShape s);
    /// <summary>loss[1] = mean NT-Xent from raw z; saves each row's log-sum-exp (over j ≠ i) and ‖zᵢ‖. In rows-subset
    /// mode (see NtXentShape) only the call's rows: their log-sum-exps and their share of the mean; norms of all rows.</summary>
    void NtXentForward(Tensor<T> loss, Tensor<T> rowLse, Tensor<T> norms, Tensor<T> z, in NtXentShape s);
    /// <summary>dz = ∂loss/∂z scaled by <paramref name="lossGrad"/>, recomputing similarities. In rows-subset mode dz
    /// holds the call's rows only (RowCount × Dim): the full gradient of the whole loss with respect to them,
    /// which needs rowLse of every row.</summary>
    void NtXentBackward(Tensor<T> dz, Tensor<T> z, Tensor<T> rowLse, Tensor<T> norms, in NtXentShape s, double lossGrad = 1.0);
    /// <summary>s[M,N] = âᵢ·b̂ⱼ for rows a[M,Dim], b[N,Dim] normalized to unit length.</summary>
    void CosineSimilarity(Tensor<T> s, Tensor<T> a, Tensor<T> b, int m, int n, int dim);

    // ---- classification ----------------------------------------------------------------------
    /// <summary>loss[1] = mean cross-entropy; saves the softmax probabilities.</summary>
    void SoftmaxCrossEntropyForward(Tensor<T> loss, Tensor<T> probs, Tensor<T> logits, Tensor<int> labels, in ClassShape s);
    /// <summary>dlogits = lossGrad·(probs − onehot)/Batch.</summary>
    void SoftmaxCrossEntropyBackward(Tensor<T> dlogits, Tensor<T> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0);

    // ---- optimizers over the flat parameter buffer -------------------------------------------
    /// <summary>Multi-tensor LARS. normScratch holds 2·segments elements (‖w‖, ‖g'‖ per segment).</summary>
    void LarsUpdate(Tensor<T> param, Tensor<T> momentum, Tensor<T> grad, Tensor<ParamSegment> segments, Tensor<T> normScratch, in LarsHyper h);
    void SgdMomentumUpdate(Tensor<T> param, Tensor<T> momentum, Tensor<T> grad, Tensor<ParamSegment> segments, in SgdHyper h);

    // ---- augmentation ------------------------------------------------------------------------
    /// <summary>views[B,3,OutH,OutW] (NCHW, normalized) from images (uint8 HWC) at sampleIndices[B].</summary>
    void AugmentViews(Tensor<T> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key);
}
