// A pass-through IBackend that counts calls and allocations, so tests can prove that a training step
// allocates nothing. Every op forwards unchanged to the wrapped backend.
using SimClr.Kernels;

namespace SimClr.Tests.Layers;

internal sealed class CountingBackend(IBackend<double> inner) : IBackend<double>
{
    private long _allocations, _calls;

    public long Allocations => Interlocked.Read(ref _allocations);
    public long Calls => Interlocked.Read(ref _calls);

    private IBackend<double> Op() { Interlocked.Increment(ref _calls); return inner; }

    public BackendInfo Info => inner.Info;

    public Storage<U> Allocate<U>(long length) where U : unmanaged
    {
        Interlocked.Increment(ref _allocations);
        return Op().Allocate<U>(length);
    }

    public void Upload<U>(Tensor<U> dst, ReadOnlySpan<U> src) where U : unmanaged => Op().Upload(dst, src);
    public void Download<U>(Span<U> dst, Tensor<U> src) where U : unmanaged => Op().Download(dst, src);
    public void Synchronize() => Op().Synchronize();
    public void Fill(Tensor<double> x, double value) => Op().Fill(x, value);
    public void Copy(Tensor<double> dst, Tensor<double> src) => Op().Copy(dst, src);
    public void Scale(Tensor<double> x, double alpha) => Op().Scale(x, alpha);
    public void Axpy(Tensor<double> y, double alpha, Tensor<double> x) => Op().Axpy(y, alpha, x);
    public void Add(Tensor<double> y, Tensor<double> a, Tensor<double> b) => Op().Add(y, a, b);
    public void ReluForward(Tensor<double> y, Tensor<double> x) => Op().ReluForward(y, x);
    public void ReluBackward(Tensor<double> dx, Tensor<double> dy, Tensor<double> y) => Op().ReluBackward(dx, dy, y);
    public void Gemm(Tensor<double> c, Tensor<double> a, Tensor<double> b, in GemmShape s) => Op().Gemm(c, a, b, s);
    public void LinearForward(Tensor<double> y, Tensor<double> x, Tensor<double> w, Tensor<double> bias, in LinearShape s) => Op().LinearForward(y, x, w, bias, s);
    public void LinearBackwardData(Tensor<double> dx, Tensor<double> dy, Tensor<double> w, in LinearShape s) => Op().LinearBackwardData(dx, dy, w, s);
    public void LinearBackwardWeights(Tensor<double> dw, Tensor<double> dbias, Tensor<double> dy, Tensor<double> x, in LinearShape s) => Op().LinearBackwardWeights(dw, dbias, dy, x, s);
    public void Conv2dForward(Tensor<double> y, Tensor<double> x, Tensor<double> w, in Conv2dShape s) => Op().Conv2dForward(y, x, w, s);
    public void Conv2dBackwardData(Tensor<double> dx, Tensor<double> dy, Tensor<double> w, in Conv2dShape s) => Op().Conv2dBackwardData(dx, dy, w, s);
    public void Conv2dBackwardFilter(Tensor<double> dw, Tensor<double> dy, Tensor<double> x, in Conv2dShape s) => Op().Conv2dBackwardFilter(dw, dy, x, s);
    public void BatchNormForwardTraining(Tensor<double> y, Tensor<double> saveMean, Tensor<double> saveInvStd, Tensor<double> runningMean, Tensor<double> runningVar,
        Tensor<double> x, Tensor<double> gamma, Tensor<double> beta, in BatchNormShape s) =>
        Op().BatchNormForwardTraining(y, saveMean, saveInvStd, runningMean, runningVar, x, gamma, beta, s);
    public void BatchNormForwardInference(Tensor<double> y, Tensor<double> x, Tensor<double> gamma, Tensor<double> beta, Tensor<double> runningMean, Tensor<double> runningVar, in BatchNormShape s) =>
        Op().BatchNormForwardInference(y, x, gamma, beta, runningMean, runningVar, s);
    public void BatchNormBackward(Tensor<double> dx, Tensor<double> dgamma, Tensor<double> dbeta, Tensor<double> dy, Tensor<double> x, Tensor<double> gamma,
        Tensor<double> saveMean, Tensor<double> saveInvStd, in BatchNormShape s) =>
        Op().BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInvStd, s);
    public void SyncBatchNormStatistics(Tensor<double> sums, Tensor<double> x, in BatchNormShape s) => Op().SyncBatchNormStatistics(sums, x, s);
    public void SyncBatchNormForward(Tensor<double> y, Tensor<double> saveMean, Tensor<double> saveInvStd, Tensor<double> runningMean, Tensor<double> runningVar,
        Tensor<double> x, Tensor<double> gamma, Tensor<double> beta, Tensor<double> sums, in BatchNormShape s) =>
        Op().SyncBatchNormForward(y, saveMean, saveInvStd, runningMean, runningVar, x, gamma, beta, sums, s);
    public void SyncBatchNormBackwardReduce(Tensor<double> sums, Tensor<double> dgamma, Tensor<double> dbeta, Tensor<double> dy, Tensor<double> x,
        Tensor<double> saveMean, Tensor<double> saveInvStd, in BatchNormShape s) => Op().SyncBatchNormBackwardReduce(sums, dgamma, dbeta, dy, x, saveMean, saveInvStd, s);
    public void SyncBatchNormBackward(Tensor<double> dx, Tensor<double> dy, Tensor<double> x, Tensor<double> gamma, Tensor<double> saveMean, Tensor<double> saveInvStd,
        Tensor<double> sums, in BatchNormShape s) => Op().SyncBatchNormBackward(dx, dy, x, gamma, saveMean, saveInvStd, sums, s);
    public void MaxPoolForward(Tensor<double> y, Tensor<double> x, in PoolShape s) => Op().MaxPoolForward(y, x, s);
    public void MaxPoolBackward(Tensor<double> dx, Tensor<double> dy, Tensor<double> y, Tensor<double> x, in PoolShape s) => Op().MaxPoolBackward(dx, dy, y, x, s);
    public void GlobalAvgPoolForward(Tensor<double> y, Tensor<double> x, int batch, int channels, int spatial) => Op().GlobalAvgPoolForward(y, x, batch, channels, spatial);
    public void GlobalAvgPoolBackward(Tensor<double> dx, Tensor<double> dy, int batch, int channels, int spatial) => Op().GlobalAvgPoolBackward(dx, dy, batch, channels, spatial);
    public void L2NormalizeForward(Tensor<double> y, Tensor<double> norms, Tensor<double> x, in RowsShape s) => Op().L2NormalizeForward(y, norms, x, s);
    public void L2NormalizeBackward(Tensor<double> dx, Tensor<double> dy, Tensor<double> y, Tensor<double> norms, in RowsShape s) => Op().L2NormalizeBackward(dx, dy, y, norms, s);
    public void NtXentForward(Tensor<double> loss, Tensor<double> rowLse, Tensor<double> norms, Tensor<double> z, in NtXentShape s) => Op().NtXentForward(loss, rowLse, norms, z, s);
    public void NtXentBackward(Tensor<double> dz, Tensor<double> z, Tensor<double> rowLse, Tensor<double> norms, in NtXentShape s, double lossGrad = 1.0) =>
        Op().NtXentBackward(dz, z, rowLse, norms, s, lossGrad);
    public void CosineSimilarity(Tensor<double> s, Tensor<double> a, Tensor<double> b, int m, int n, int dim) => Op().CosineSimilarity(s, a, b, m, n, dim);
    public void SoftmaxCrossEntropyForward(Tensor<double> loss, Tensor<double> probs, Tensor<double> logits, Tensor<int> labels, in ClassShape s) =>
        Op().SoftmaxCrossEntropyForward(loss, probs, logits, labels, s);
    public void SoftmaxCrossEntropyBackward(Tensor<double> dlogits, Tensor<double> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0) =>
        Op().SoftmaxCrossEntropyBackward(dlogits, probs, labels, s, lossGrad);
    public void LarsUpdate(Tensor<double> param, Tensor<double> momentum, Tensor<double> grad, Tensor<ParamSegment> segments, Tensor<double> normScratch, in LarsHyper h) =>
        Op().LarsUpdate(param, momentum, grad, segments, normScratch, h);
    public void SgdMomentumUpdate(Tensor<double> param, Tensor<double> momentum, Tensor<double> grad, Tensor<ParamSegment> segments, in SgdHyper h) =>
        Op().SgdMomentumUpdate(param, momentum, grad, segments, h);
    public void AugmentViews(Tensor<double> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key) =>
        Op().AugmentViews(views, images, sampleIndices, set, spec, key);

    public void Dispose() { }
}
