// Launchers of the hand-written kernels in kernels/*.cu (owned by the CUDA kernels work, issue 3).
namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private static NotSupportedException Pending(string op) => new($"{op} is not implemented on the CUDA backend yet");
    public void Fill(Tensor<float> x, double value) => throw Pending(nameof(Fill));
    public void Copy(Tensor<float> dst, Tensor<float> src) => throw Pending(nameof(Copy));
    public void Scale(Tensor<float> x, double alpha) => throw Pending(nameof(Scale));
    public void Axpy(Tensor<float> y, double alpha, Tensor<float> x) => throw Pending(nameof(Axpy));
    public void Add(Tensor<float> y, Tensor<float> a, Tensor<float> b) => throw Pending(nameof(Add));
    public void ReluForward(Tensor<float> y, Tensor<float> x) => throw Pending(nameof(ReluForward));
    public void ReluBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y) => throw Pending(nameof(ReluBackward));
    public void GlobalAvgPoolForward(Tensor<float> y, Tensor<float> x, int batch, int channels, int spatial) => throw Pending(nameof(GlobalAvgPoolForward));
    public void GlobalAvgPoolBackward(Tensor<float> dx, Tensor<float> dy, int batch, int channels, int spatial) => throw Pending(nameof(GlobalAvgPoolBackward));
    public void L2NormalizeForward(Tensor<float> y, Tensor<float> norms, Tensor<float> x, in RowsShape s) => throw Pending(nameof(L2NormalizeForward));
    public void L2NormalizeBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> norms, in RowsShape s) => throw Pending(nameof(L2NormalizeBackward));
    public void NtXentForward(Tensor<float> loss, Tensor<float> rowLse, Tensor<float> norms, Tensor<float> z, in NtXentShape s) => throw Pending(nameof(NtXentForward));
    public void NtXentBackward(Tensor<float> dz, Tensor<float> z, Tensor<float> rowLse, Tensor<float> norms, in NtXentShape s, double lossGrad = 1.0) => throw Pending(nameof(NtXentBackward));
    public void CosineSimilarity(Tensor<float> s, Tensor<float> a, Tensor<float> b, int m, int n, int dim) => throw Pending(nameof(CosineSimilarity));
    public void SoftmaxCrossEntropyForward(Tensor<float> loss, Tensor<float> probs, Tensor<float> logits, Tensor<int> labels, in ClassShape s) => throw Pending(nameof(SoftmaxCrossEntropyForward));
    public void SoftmaxCrossEntropyBackward(Tensor<float> dlogits, Tensor<float> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0) => throw Pending(nameof(SoftmaxCrossEntropyBackward));
    public void LarsUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, Tensor<float> normScratch, in LarsHyper h) => throw Pending(nameof(LarsUpdate));
    public void SgdMomentumUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, in SgdHyper h) => throw Pending(nameof(SgdMomentumUpdate));
}
