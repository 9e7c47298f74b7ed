// Convolution, batch norm and max pooling over cuDNN's legacy API (NCHW, FP32). Each distinct shape gets a
// plan once: its descriptors and, for convolutions, the fastest algorithm of each direction found by
// cudnnFind*Algorithm (which times the candidates with its own scratch memory). One workspace buffer is
// shared by every convolution and grows when a plan needs more; planning therefore may allocate, so plan
// (PlanConvolution, or one uncaptured step) before counting allocations or capturing a graph.
// Accumulation: Conv2dBackwardFilter adds into dw (beta = 1), BatchNormBackward adds into dgamma and dbeta;
// activation gradients overwrite. cuDNN's saved mean and inverse variance are exactly saveMean and saveInvStd,
// and its exponentialAverageFactor is PyTorch's momentum (running variance unbiased, as in PyTorch).
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private readonly Dictionary<Conv2dShape, ConvolutionPlan> _convolutions = [];
    private readonly Dictionary<(int Batch, int Channels, int Spatial), BatchNormPlan> _batchNorms = [];
    private readonly Dictionary<PoolShape, PoolPlan> _pools = [];
    private CudaStorage<byte>? _workspace;

    /// <summary>Bytes of the shared convolution workspace.</summary>
    public long WorkspaceBytes => _workspace?.Length ?? 0;

    private sealed class ConvolutionPlan(CudnnDescriptor x, CudnnDescriptor y, CudnnDescriptor w,
        CudnnDescriptor forward, CudnnDescriptor backwardData, CudnnDescriptor backwardFilter) : IDisposable
    {
        public CudnnDescriptor X { get; } = x;
        public CudnnDescriptor Y { get; } = y;
        public CudnnDescriptor W { get; } = w;
        // One convolution descriptor per direction: each carries the math type its chosen algorithm was found with.
        public CudnnDescriptor Forward { get; } = forward;
        public CudnnDescriptor BackwardData { get; } = backwardData;
        public CudnnDescriptor BackwardFilter { get; } = backwardFilter;
        public int ForwardAlgorithm, BackwardDataAlgorithm, BackwardFilterAlgorithm;
        public long ForwardBytes, BackwardDataBytes, BackwardFilterBytes;

        public void Dispose()
        {
            foreach (var d in new[] { X, Y, W, Forward, BackwardData, BackwardFilter }) d.Dispose();
        }
    }

    private sealed class BatchNormPlan(CudnnDescriptor x, CudnnDescriptor parameters) : IDisposable
    {
        public CudnnDescriptor X { get; } = x;
        public CudnnDescriptor Parameters { get; } = parameters;

        public void Dispose()
        {
            X.Dispose();
            Parameters.Dispose();
        }
    }

    private sealed class PoolPlan(CudnnDescriptor pool, CudnnDescriptor x, CudnnDescriptor y) : IDisposable
    {
        public CudnnDescriptor Pool { get; } = pool;
        public CudnnDescriptor X { get; } = x;
        public CudnnDescriptor Y { get; } = y;

        public void Dispose()
        {
            Pool.Dispose();
            X.Dispose();
            Y.Dispose();
        }
    }

    private void DisposeDnnPlans(Action<Action> attempt)
    {
        foreach (var plan in _convolutions.Values) attempt(plan.Dispose);
        foreach (var plan in _batchNorms.Values) attempt(plan.Dispose);
        foreach (var plan in _pools.Values) attempt(plan.Dispose);
        _convolutions.Clear();
        _batchNorms.Clear();
        _pools.Clear();
    }

    private nint CudnnHandleValue => _cudnn.DangerousGetHandle();

    // ---- convolution -------------------------------------------------------------------------------
    /// <summary>Finds the algorithms of all three directions for <paramref name="s"/> and grows the workspace
    /// to fit them. Ops do this on first use; layers may call it while building the model.</summary>
    public void PlanConvolution(in Conv2dShape s) => ConvolutionPlanFor(s);

    private unsafe ConvolutionPlan ConvolutionPlanFor(in Conv2dShape s)
    {
        if (_convolutions.TryGetValue(s, out var plan)) return plan;
        s.Validate();
        EnsureCurrent();
        var descriptors = new List<CudnnDescriptor>();
        try
        {
            CudnnDescriptor Track(CudnnDescriptor d) { descriptors.Add(d); return d; }
            var x = Track(CudnnDescriptor.Tensor4d(s.Batch, s.InChannels, s.InHeight, s.InWidth));
            var y = Track(CudnnDescriptor.Tensor4d(s.Batch, s.OutChannels, s.OutHeight, s.OutWidth));
            var w = Track(CudnnDescriptor.Filter4d(s.OutChannels, s.InChannels, s.KernelH, s.KernelW));
            var forward = Track(ConvolutionDescriptor(s));
            var backwardData = Track(ConvolutionDescriptor(s));
            var backwardFilter = Track(ConvolutionDescriptor(s));
            plan = new ConvolutionPlan(x, y, w, forward, backwardData, backwardFilter);

            const int requested = 16;
            var results = stackalloc CudnnConvolutionAlgoPerf[requested];
            int returned;
            Cudnn.Check(Cudnn.cudnnFindConvolutionForwardAlgorithm(CudnnHandleValue, x.Value, w.Value, forward.Value, y.Value, requested, &returned, results));
            (plan.ForwardAlgorithm, plan.ForwardBytes) = Choose(new ReadOnlySpan<CudnnConvolutionAlgoPerf>(results, returned), forward, "forward", s);
            Cudnn.Check(Cudnn.cudnnFindConvolutionBackwardDataAlgorithm(CudnnHandleValue, w.Value, y.Value, backwardData.Value, x.Value, requested, &returned, results));
            (plan.BackwardDataAlgorithm, plan.BackwardDataBytes) = Choose(new ReadOnlySpan<CudnnConvolutionAlgoPerf>(results, returned), backwardData, "backward-data", s);
            Cudnn.Check(Cudnn.cudnnFindConvolutionBackwardFilterAlgorithm(CudnnHandleValue, x.Value, y.Value, backwardFilter.Value, w.Value, requested, &returned, results));
            (plan.BackwardFilterAlgorithm, plan.BackwardFilterBytes) = Choose(new ReadOnlySpan<CudnnConvolutionAlgoPerf>(results, returned), backwardFilter, "backward-filter", s);
        }
        catch
        {
            foreach (var d in descriptors) d.Dispose();
            throw;
        }
        EnsureWorkspace(Math.Max(plan.ForwardBytes, Math.Max(plan.BackwardDataBytes, plan.BackwardFilterBytes)));
        _convolutions[s] = plan;
        return plan;
    }

    private CudnnDescriptor ConvolutionDescriptor(in Conv2dShape s)
    {
        var d = CudnnDescriptor.Create(CudnnDescriptorKind.Convolution);
        try
        {
            Cudnn.Check(Cudnn.cudnnSetConvolution2dDescriptor(d.Value, s.PadH, s.PadW, s.StrideH, s.StrideW, 1, 1, CudnnConvolutionMode.CrossCorrelation, CudnnDataType.Float));
            Cudnn.Check(Cudnn.cudnnSetConvolutionMathType(d.Value, MathMode == CudaMathMode.Tf32 ? CudnnMathType.TensorOp : CudnnMathType.Fma));
            return d;
        }
        catch
        {
            d.Dispose();
            throw;
        }
    }

    // Results come fastest first. In FP32 mode the descriptor stays at FMA math (DEFAULT would permit TF32 on
    // Ampere and later) and tensor-op results are refused; in TF32 mode the descriptor takes the math type the
    // chosen algorithm was timed with, as cuDNN asks.
    private (int Algorithm, long Bytes) Choose(ReadOnlySpan<CudnnConvolutionAlgoPerf> results, CudnnDescriptor convolution, string direction, in Conv2dShape s)
    {
        foreach (var r in results)
        {
            if (r.Status != CudnnStatus.Success) continue;
            if (MathMode == CudaMathMode.Fp32)
            {
                if (r.MathType is CudnnMathType.TensorOp or CudnnMathType.TensorOpAllowConversion) continue;
            }
            else
            {
                Cudnn.Check(Cudnn.cudnnSetConvolutionMathType(convolution.Value, r.MathType));
            }
            return (r.Algorithm, (long)r.Memory);
        }
        throw new CudnnException(CudnnStatus.NotSupported, Cudnn.StatusName(CudnnStatus.NotSupported),
            $"no usable {direction} algorithm for {s} in {MathMode} mode", $"cudnnFindConvolution{direction}Algorithm");
    }

    private void EnsureWorkspace(long bytes)
    {
        if (bytes <= WorkspaceBytes) return;
        if (_workspace is not null)
        {
            // Queued convolutions may still use the old buffer.
            Driver.StreamSynchronize(Stream);
            _workspace.Dispose();
        }
        _workspace = (CudaStorage<byte>)Allocate<byte>(bytes);
    }

    private unsafe void* Workspace => _workspace is null ? null : (void*)_workspace.DevicePointer;

    public unsafe void Conv2dForward(Tensor<float> y, Tensor<float> x, Tensor<float> w, in Conv2dShape s)
    {
        s.Validate();
        var py = Floats(y, s.OutputElements);
        var px = Floats(x, s.InputElements);
        var pw = Floats(w, s.WeightElements);
        var plan = ConvolutionPlanFor(s);
        EnsureCurrent();
        float alpha = 1f, beta = 0f;
        Cudnn.Check(Cudnn.cudnnConvolutionForward(CudnnHandleValue, &alpha, plan.X.Value, px, plan.W.Value, pw, plan.Forward.Value,
            plan.ForwardAlgorithm, Workspace, (nuint)plan.ForwardBytes, &beta, plan.Y.Value, py));
    }

    public unsafe void Conv2dBackwardData(Tensor<float> dx, Tensor<float> dy, Tensor<float> w, in Conv2dShape s)
    {
        s.Validate();
        var pdx = Floats(dx, s.InputElements);
        var pdy = Floats(dy, s.OutputElements);
        var pw = Floats(w, s.WeightElements);
        var plan = ConvolutionPlanFor(s);
        EnsureCurrent();
        float alpha = 1f, beta = 0f;
        Cudnn.Check(Cudnn.cudnnConvolutionBackwardData(CudnnHandleValue, &alpha, plan.W.Value, pw, plan.Y.Value, pdy, plan.BackwardData.Value,
            plan.BackwardDataAlgorithm, Workspace, (nuint)plan.BackwardDataBytes, &beta, plan.X.Value, pdx));
    }

    public unsafe void Conv2dBackwardFilter(Tensor<float> dw, Tensor<float> dy, Tensor<float> x, in Conv2dShape s)
    {
        s.Validate();
        var pdw = Floats(dw, s.WeightElements);
        var pdy = Floats(dy, s.OutputElements);
        var px = Floats(x, s.InputElements);
        var plan = ConvolutionPlanFor(s);
        EnsureCurrent();
        float alpha = 1f, beta = 1f;
        Cudnn.Check(Cudnn.cudnnConvolutionBackwardFilter(CudnnHandleValue, &alpha, plan.X.Value, px, plan.Y.Value, pdy, plan.BackwardFilter.Value,
            plan.BackwardFilterAlgorithm, Workspace, (nuint)plan.BackwardFilterBytes, &beta, plan.W.Value, pdw));
    }

    // ---- batch norm (spatial mode; [N, C, Spatial] is described as N, C, Spatial, 1) ----------------
    private BatchNormPlan BatchNormPlanFor(in BatchNormShape s)
    {
        if (s.Batch <= 0 || s.Channels <= 0 || s.Spatial <= 0) throw new ArgumentException($"invalid batch norm {s}");
        var key = (s.Batch, s.Channels, s.Spatial);
        if (_batchNorms.TryGetValue(key, out var plan)) return plan;
        EnsureCurrent();
        var x = CudnnDescriptor.Tensor4d(s.Batch, s.Channels, s.Spatial, 1);
        CudnnDescriptor parameters;
        try { parameters = CudnnDescriptor.Tensor4d(1, s.Channels, 1, 1); }
        catch { x.Dispose(); throw; }
        plan = new BatchNormPlan(x, parameters);
        _batchNorms[key] = plan;
        return plan;
    }

    public unsafe void BatchNormForwardTraining(Tensor<float> y, Tensor<float> saveMean, Tensor<float> saveInvStd, Tensor<float> runningMean, Tensor<float> runningVar,
        Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, in BatchNormShape s)
    {
        var py = Floats(y, s.Elements);
        var pMean = Floats(saveMean, s.Channels);
        var pInvStd = Floats(saveInvStd, s.Channels);
        var pRunMean = Floats(runningMean, s.Channels);
        var pRunVar = Floats(runningVar, s.Channels);
        var px = Floats(x, s.Elements);
        var pGamma = Floats(gamma, s.Channels);
        var pBeta = Floats(beta, s.Channels);
        var plan = BatchNormPlanFor(s);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnBatchNormalizationForwardTraining(CudnnHandleValue, CudnnBatchNormMode.Spatial, &one, &zero,
            plan.X.Value, px, plan.X.Value, py, plan.Parameters.Value, pGamma, pBeta, s.Momentum, pRunMean, pRunVar, s.Epsilon, pMean, pInvStd));
    }

    public unsafe void BatchNormForwardInference(Tensor<float> y, Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, Tensor<float> runningMean, Tensor<float> runningVar, in BatchNormShape s)
    {
        var py = Floats(y, s.Elements);
        var px = Floats(x, s.Elements);
        var pGamma = Floats(gamma, s.Channels);
        var pBeta = Floats(beta, s.Channels);
        var pRunMean = Floats(runningMean, s.Channels);
        var pRunVar = Floats(runningVar, s.Channels);
        var plan = BatchNormPlanFor(s);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnBatchNormalizationForwardInference(CudnnHandleValue, CudnnBatchNormMode.Spatial, &one, &zero,
            plan.X.Value, px, plan.X.Value, py, plan.Parameters.Value, pGamma, pBeta, pRunMean, pRunVar, s.Epsilon));
    }

    public unsafe void BatchNormBackward(Tensor<float> dx, Tensor<float> dgamma, Tensor<float> dbeta, Tensor<float> dy, Tensor<float> x, Tensor<float> gamma,
        Tensor<float> saveMean, Tensor<float> saveInvStd, in BatchNormShape s)
    {
        var pdx = Floats(dx, s.Elements);
        var pdGamma = Floats(dgamma, s.Channels);
        var pdBeta = Floats(dbeta, s.Channels);
        var pdy = Floats(dy, s.Elements);
        var px = Floats(x, s.Elements);
        var pGamma = Floats(gamma, s.Channels);
        var pMean = Floats(saveMean, s.Channels);
        var pInvStd = Floats(saveInvStd, s.Channels);
        var plan = BatchNormPlanFor(s);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnBatchNormalizationBackward(CudnnHandleValue, CudnnBatchNormMode.Spatial, &one, &zero, &one, &one,
            plan.X.Value, px, plan.X.Value, pdy, plan.X.Value, pdx, plan.Parameters.Value, pGamma, pdGamma, pdBeta, s.Epsilon, pMean, pInvStd));
    }

    // ---- max pooling -----------------------------------------------------------------------------------
    private PoolPlan PoolPlanFor(in PoolShape s)
    {
        if (s.Batch <= 0 || s.Channels <= 0 || s.InHeight <= 0 || s.InWidth <= 0 || s.Window <= 0 || s.Stride <= 0 || s.Pad < 0 || s.Pad >= s.Window || s.OutHeight <= 0 || s.OutWidth <= 0)
            throw new ArgumentException($"invalid pooling {s}");
        if (_pools.TryGetValue(s, out var plan)) return plan;
        EnsureCurrent();
        var pool = CudnnDescriptor.Create(CudnnDescriptorKind.Pooling);
        CudnnDescriptor? x = null, y = null;
        try
        {
            // MaxDeterministic gives each window's gradient to a single element, as the CPU twin does.
            Cudnn.Check(Cudnn.cudnnSetPooling2dDescriptor(pool.Value, CudnnPoolingMode.MaxDeterministic, CudnnNanPropagation.Propagate,
                s.Window, s.Window, s.Pad, s.Pad, s.Stride, s.Stride));
            x = CudnnDescriptor.Tensor4d(s.Batch, s.Channels, s.InHeight, s.InWidth);
            y = CudnnDescriptor.Tensor4d(s.Batch, s.Channels, s.OutHeight, s.OutWidth);
        }
        catch
        {
            pool.Dispose();
            x?.Dispose();
            y?.Dispose();
            throw;
        }
        plan = new PoolPlan(pool, x, y);
        _pools[s] = plan;
        return plan;
    }

    public unsafe void MaxPoolForward(Tensor<float> y, Tensor<float> x, in PoolShape s)
    {
        var plan = PoolPlanFor(s);
        var py = Floats(y, (long)s.Batch * s.Channels * s.OutHeight * s.OutWidth);
        var px = Floats(x, (long)s.Batch * s.Channels * s.InHeight * s.InWidth);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnPoolingForward(CudnnHandleValue, plan.Pool.Value, &one, plan.X.Value, px, &zero, plan.Y.Value, py));
    }

    public unsafe void MaxPoolBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> x, in PoolShape s)
    {
        var plan = PoolPlanFor(s);
        long outElements = (long)s.Batch * s.Channels * s.OutHeight * s.OutWidth;
        long inElements = (long)s.Batch * s.Channels * s.InHeight * s.InWidth;
        var pdx = Floats(dx, inElements);
        var pdy = Floats(dy, outElements);
        var py = Floats(y, outElements);
        var px = Floats(x, inElements);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnPoolingBackward(CudnnHandleValue, plan.Pool.Value, &one, plan.Y.Value, py, plan.Y.Value, pdy, plan.X.Value, px, &zero, plan.X.Value, pdx));
    }
}
