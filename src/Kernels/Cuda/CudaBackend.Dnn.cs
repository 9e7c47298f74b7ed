// Convolution, batch norm and max pooling over cuDNN's legacy API (NCHW, FP32). Each distinct shape gets a
// plan once: its descriptors and, for convolutions, one algorithm per direction, chosen as the backend's
// ConvolutionAlgorithms says (Reproducible: cuDNN's heuristic ranking, deterministic algorithms only, the
// same answer in every process; Fastest: cudnnFind*'s timing). In FP32 mode every convolution descriptor is
// set to FMA math and tensor-op results are refused, because DEFAULT math lets cuDNN use TF32 on Ampere and
// later (PyTorch pins FMA for the same reason). One workspace buffer is shared by every convolution and
// grows when a plan needs more; planning therefore may allocate, so plan (PlanConvolution, or one uncaptured
// step) before counting allocations or capturing a graph.
// Accumulation: Conv2dBackwardFilter adds into dw (beta = 1), BatchNormBackward adds into dgamma and dbeta;
// activation gradients overwrite. cuDNN's saved mean and inverse variance are exactly saveMean and saveInvStd,
// and its exponentialAverageFactor is PyTorch's momentum (running variance unbiased, as in PyTorch).
// Max pooling runs in cuDNN or in kernels/pool.cu (CudaBackendOptions.MaxPool; the launcher is in
// CudaBackend.Kernels.cs).
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

            (plan.ForwardAlgorithm, plan.ForwardBytes) = SelectAlgorithm(ConvolutionDirection.Forward, plan, s);
            (plan.BackwardDataAlgorithm, plan.BackwardDataBytes) = SelectAlgorithm(ConvolutionDirection.BackwardData, plan, s);
            (plan.BackwardFilterAlgorithm, plan.BackwardFilterBytes) = SelectAlgorithm(ConvolutionDirection.BackwardFilter, plan, s);
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

    internal enum ConvolutionDirection { Forward, BackwardData, BackwardFilter }

    /// <summary>One direction's algorithm, with the math type its descriptor must carry.</summary>
    internal readonly record struct AlgorithmChoice(int Algorithm, CudnnMathType MathType);

    /// <summary>A convolution workspace above this is passed over (FFT algorithms can ask for gigabytes).</summary>
    internal const long MaxConvolutionWorkspace = 1L << 30;

    /// <summary>The first acceptable result of cuDNN's ranking (best first): successful, within the workspace
    /// limit, deterministic when <paramref name="policy"/> is Reproducible, and in FP32 mode not a tensor-op
    /// algorithm; the FP32 choice always carries FMA math (never DEFAULT, which permits TF32). In TF32 mode the
    /// descriptor takes the math type the algorithm was ranked with, as cuDNN asks. Null when none qualifies.</summary>
    internal static AlgorithmChoice? ChooseAlgorithm(ReadOnlySpan<CudnnConvolutionAlgoPerf> ranked, CudaMathMode mode, ConvolutionAlgorithms policy)
    {
        foreach (var r in ranked)
        {
            if (r.Status != CudnnStatus.Success || r.Algorithm < 0) continue;
            if ((long)r.Memory > MaxConvolutionWorkspace) continue;
            if (policy == ConvolutionAlgorithms.Reproducible && r.Determinism != CudnnDeterminism.Deterministic) continue;
            if (mode == CudaMathMode.Fp32)
            {
                if (r.MathType is CudnnMathType.TensorOp or CudnnMathType.TensorOpAllowConversion) continue;
                return new AlgorithmChoice(r.Algorithm, CudnnMathType.Fma);
            }
            return new AlgorithmChoice(r.Algorithm, r.MathType);
        }
        return null;
    }

    private unsafe (int Algorithm, long Bytes) SelectAlgorithm(ConvolutionDirection direction, ConvolutionPlan plan, in Conv2dShape s)
    {
        const int requested = 16;
        var results = stackalloc CudnnConvolutionAlgoPerf[requested];
        int returned = 0;
        bool timed = Options.Convolutions == ConvolutionAlgorithms.Fastest;
        nint h = CudnnHandleValue;
        var conv = direction switch
        {
            ConvolutionDirection.Forward => plan.Forward,
            ConvolutionDirection.BackwardData => plan.BackwardData,
            _ => plan.BackwardFilter,
        };
        switch (direction, timed)
        {
            case (ConvolutionDirection.Forward, true):
                Cudnn.Check(Cudnn.cudnnFindConvolutionForwardAlgorithm(h, plan.X.Value, plan.W.Value, conv.Value, plan.Y.Value, requested, &returned, results));
                break;
            case (ConvolutionDirection.Forward, false):
                Cudnn.Check(Cudnn.cudnnGetConvolutionForwardAlgorithm_v7(h, plan.X.Value, plan.W.Value, conv.Value, plan.Y.Value, requested, &returned, results));
                break;
            case (ConvolutionDirection.BackwardData, true):
                Cudnn.Check(Cudnn.cudnnFindConvolutionBackwardDataAlgorithm(h, plan.W.Value, plan.Y.Value, conv.Value, plan.X.Value, requested, &returned, results));
                break;
            case (ConvolutionDirection.BackwardData, false):
                Cudnn.Check(Cudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.W.Value, plan.Y.Value, conv.Value, plan.X.Value, requested, &returned, results));
                break;
            case (_, true):
                Cudnn.Check(Cudnn.cudnnFindConvolutionBackwardFilterAlgorithm(h, plan.X.Value, plan.Y.Value, conv.Value, plan.W.Value, requested, &returned, results));
                break;
            default:
                Cudnn.Check(Cudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.X.Value, plan.Y.Value, conv.Value, plan.W.Value, requested, &returned, results));
                break;
        }
        var choice = ChooseAlgorithm(new ReadOnlySpan<CudnnConvolutionAlgoPerf>(results, returned), MathMode, Options.Convolutions)
            ?? throw new CudnnException(CudnnStatus.NotSupported, Cudnn.StatusName(CudnnStatus.NotSupported),
                $"no usable {direction} algorithm for {s} in {MathMode} mode with {Options.Convolutions} algorithms among the {returned} cuDNN offered",
                timed ? $"cudnnFindConvolution{direction}Algorithm" : $"cudnnGetConvolution{direction}Algorithm_v7");
        Cudnn.Check(Cudnn.cudnnSetConvolutionMathType(conv.Value, choice.MathType));
        // The workspace of the algorithm under the math type now set on the descriptor.
        nuint bytes;
        switch (direction)
        {
            case ConvolutionDirection.Forward:
                Cudnn.Check(Cudnn.cudnnGetConvolutionForwardWorkspaceSize(h, plan.X.Value, plan.W.Value, conv.Value, plan.Y.Value, choice.Algorithm, &bytes));
                break;
            case ConvolutionDirection.BackwardData:
                Cudnn.Check(Cudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.W.Value, plan.Y.Value, conv.Value, plan.X.Value, choice.Algorithm, &bytes));
                break;
            default:
                Cudnn.Check(Cudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.X.Value, plan.Y.Value, conv.Value, plan.W.Value, choice.Algorithm, &bytes));
                break;
        }
        return (choice.Algorithm, (long)bytes);
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
    // Pad < Window keeps every window non-empty (the own kernel relies on it; cuDNN refuses the rest).
    private static void CheckPool(in PoolShape s)
    {
        if (s.Batch <= 0 || s.Channels <= 0 || s.InHeight <= 0 || s.InWidth <= 0 || s.Window <= 0 || s.Stride <= 0 || s.Pad < 0 || s.Pad >= s.Window || s.OutHeight <= 0 || s.OutWidth <= 0)
            throw new ArgumentException($"invalid pooling {s}");
    }

    private PoolPlan PoolPlanFor(in PoolShape s)
    {
        CheckPool(s);
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
        if (Options.MaxPool == MaxPoolImplementation.Kernel)
        {
            CheckPool(s);
            MaxPoolKernelForward(y, x, s);
            return;
        }
        var plan = PoolPlanFor(s);
        var py = Floats(y, (long)s.Batch * s.Channels * s.OutHeight * s.OutWidth);
        var px = Floats(x, (long)s.Batch * s.Channels * s.InHeight * s.InWidth);
        EnsureCurrent();
        float one = 1f, zero = 0f;
        Cudnn.Check(Cudnn.cudnnPoolingForward(CudnnHandleValue, plan.Pool.Value, &one, plan.X.Value, px, &zero, plan.Y.Value, py));
    }

    public unsafe void MaxPoolBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> x, in PoolShape s)
    {
        if (Options.MaxPool == MaxPoolImplementation.Kernel)
        {
            CheckPool(s);
            MaxPoolKernelBackward(dx, dy, x, s);
            return;
        }
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
