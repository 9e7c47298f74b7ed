// BatchNorm2d (over N·H·W per channel of [N, C, H, W]) and BatchNorm1d (over N per feature of [N, C]),
// PyTorch semantics: eps 1e-5, momentum 0.1, biased variance for normalization, unbiased for the running
// estimate. Parameters "{name}.weight" (γ = 1) and "{name}.bias" (β = 0) are flagged NoWeightDecay|NoAdaptation
// as SimCLR excludes them from weight decay and LARS; buffers "{name}.running_mean" (0), "{name}.running_var"
// (1) and the host counter "{name}.num_batches_tracked". Training mode saves the batch mean and 1/σ for
// Backward; inference mode uses the running statistics and has no Backward. Backward never reads the
// output y, so the layer after a BN may overwrite y in place (the in-place ReLU and the residual join do).
// Synchronized mode (data parallelism, SynchronizeStatistics): the batch statistics are those of the whole global
// batch. The forward all-reduces the per-channel Σx, Σx² (and the count) of every rank before normalizing, the
// backward all-reduces Σdy and Σdy·(x − mean) before computing dx; dγ and dβ get this rank's share only, which the
// gradient all-reduce then sums. Every rank thus computes the same statistics and running statistics.
// Accumulation rule: dγ +=, dβ +=, dx =.
using System.Numerics;
using SimClr.Kernels;
using SimClr.Kernels.Distributed;

namespace SimClr.Layers;

/// <summary>Whether batch norm statistics are those of each rank's slice of the batch or of the whole global batch.</summary>
public enum BatchNormSync { Synchronized, Local }

public abstract class BatchNormBase<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const double DefaultEpsilon = 1e-5, DefaultMomentum = 0.1;

    private readonly ParameterStore<T> _store;
    private readonly int _counter;
    private ArenaSlot<T>? _y, _dx, _mean, _invStd;
    private Shape _planned;
    private Tensor<T> _x;
    private BatchNormShape _shape;
    private NormMode _lastForward = NormMode.Inference;
    private InputGradient _inputGradient;
    private ICommunicator? _group;
    private Tensor<double> _sums;

    protected BatchNormBase(ParameterStore<T> store, string name, int channels, double epsilon, double momentum)
        : base(store.Backend, name)
    {
        if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels), $"{name}: channels must be positive, got {channels}");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"{name}: epsilon must be positive, got {epsilon}");
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"{name}: momentum must be in [0, 1], got {momentum}");
        _store = store;
        Channels = channels;
        Epsilon = epsilon;
        Momentum = momentum;
        const SegmentFlags excluded = SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation;
        Gamma = store.AddParameter(Join(name, "weight"), new Shape(channels), ParamInit.Ones, excluded);
        Beta = store.AddParameter(Join(name, "bias"), new Shape(channels), ParamInit.Zeros, excluded);
        RunningMean = store.AddBuffer(Join(name, "running_mean"), new Shape(channels), 0.0);
        RunningVar = store.AddBuffer(Join(name, "running_var"), new Shape(channels), 1.0);
        _counter = store.AddCounter(Join(name, "num_batches_tracked"));
    }

    public int Channels { get; }
    public double Epsilon { get; }
    public double Momentum { get; }
    public NormMode Mode { get; private set; } = NormMode.Training;
    public ParameterSlot<T> Gamma { get; }
    public ParameterSlot<T> Beta { get; }
    public BufferSlot<T> RunningMean { get; }
    public BufferSlot<T> RunningVar { get; }

    public override void SetMode(NormMode mode) => Mode = mode;

    /// <summary>The doubles <see cref="SynchronizeStatistics"/> needs: [Σ, Σ per channel, count].</summary>
    public long SynchronizedSumsLength => 2L * Channels + 1;

    /// <summary>The group whose global batch the training statistics are taken over, or null (this rank's batch).</summary>
    public ICommunicator? StatisticsGroup => _group;

    /// <summary>From now on, training-mode statistics are those of every rank of <paramref name="group"/> together;
    /// <paramref name="sums"/> (<see cref="SynchronizedSumsLength"/> doubles on the backend's device) carries the reductions.</summary>
    public void SynchronizeStatistics(ICommunicator group, Tensor<double> sums)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (sums.Length != SynchronizedSumsLength) throw new ArgumentException($"{Name}: the synchronized sums need {SynchronizedSumsLength} doubles, got {sums.Length}", nameof(sums));
        _group = group;
        _sums = sums;
    }

    /// <summary>Checks the input's rank and channel axis and returns the number of elements per channel per sample.</summary>
    protected abstract int SpatialOf(Shape input);

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        SpatialOf(input);
        _planned = input;
        var layout = input.Rank == 4 ? Layout.NCHW : Layout.RowMajor;
        _y = arena.Reserve(Name + ".y", input, layout);
        _mean = arena.Reserve(Name + ".save_mean", new Shape(Channels));
        _invStd = arena.Reserve(Name + ".save_invstd", new Shape(Channels));
        // The op always writes dx, so the buffer exists even when the caller does not want it.
        _dx = arena.ReserveGradient(Name + ".dx", input, layout, arena.NextTick());
        _inputGradient = inputGradient;
        InputGradientSlot = inputGradient == InputGradient.Compute ? _dx : null;
        return input;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        int n = Shapes.CheckBatch(Name, x.Shape, _planned);
        _x = x;
        _shape = new BatchNormShape(n, Channels, SpatialOf(x.Shape), Epsilon, Momentum);
        var y = _y!.Batch(n);
        if (Mode == NormMode.Training)
        {
            if ((long)n * _shape.Spatial < 2)
                throw new ArgumentException($"{Name}: training-mode batch norm needs more than one value per channel, got input {x.Shape}");
            if (_group is null)
            {
                Backend.BatchNormForwardTraining(y, _mean!.View, _invStd!.View, RunningMean.Value, RunningVar.Value, x, Gamma.Value, Beta.Value, _shape);
            }
            else
            {
                Backend.SyncBatchNormStatistics(_sums, x, _shape);
                _group.AllReduceSum(_sums);
                Backend.SyncBatchNormForward(y, _mean!.View, _invStd!.View, RunningMean.Value, RunningVar.Value, x, Gamma.Value, Beta.Value, _sums, _shape);
            }
            _store.IncrementCounter(_counter);
        }
        else
        {
            Backend.BatchNormForwardInference(y, x, Gamma.Value, Beta.Value, RunningMean.Value, RunningVar.Value, _shape);
        }
        _lastForward = Mode;
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        if (_lastForward != NormMode.Training)
            throw new InvalidOperationException($"{Name}: Backward needs a training-mode Forward (inference mode uses fixed running statistics and has no backward here)");
        CheckGradient(dy, _y!.Batch(_shape.Batch), Name);
        var dx = _dx!.Batch(_shape.Batch);
        if (_group is null)
        {
            Backend.BatchNormBackward(dx, Gamma.Gradient, Beta.Gradient, dy, _x, Gamma.Value, _mean!.View, _invStd!.View, _shape);
        }
        else
        {
            Backend.SyncBatchNormBackwardReduce(_sums, Gamma.Gradient, Beta.Gradient, dy, _x, _mean!.View, _invStd!.View, _shape);
            _group.AllReduceSum(_sums);
            Backend.SyncBatchNormBackward(dx, dy, _x, Gamma.Value, _mean.View, _invStd.View, _sums, _shape);
        }
        return _inputGradient == InputGradient.Compute ? dx : default;
    }
}

/// <summary>BatchNorm over [N, C, H, W].</summary>
public sealed class BatchNorm2d<T>(ParameterStore<T> store, string name, int channels, double epsilon = BatchNormBase<T>.DefaultEpsilon, double momentum = BatchNormBase<T>.DefaultMomentum)
    : BatchNormBase<T>(store, name, channels, epsilon, momentum) where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int SpatialOf(Shape input) =>
        input.Rank == 4 && input[1] == Channels ? input[2] * input[3] : throw new ArgumentException($"{Name}: expects [N, {Channels}, H, W], got {input}");
}

/// <summary>BatchNorm over [N, C] (the projection head).</summary>
public sealed class BatchNorm1d<T>(ParameterStore<T> store, string name, int channels, double epsilon = BatchNormBase<T>.DefaultEpsilon, double momentum = BatchNormBase<T>.DefaultMomentum)
    : BatchNormBase<T>(store, name, channels, epsilon, momentum) where T : unmanaged, IFloatingPointIeee754<T>
{
    protected override int SpatialOf(Shape input) =>
        input.Rank == 2 && input[1] == Channels ? 1 : throw new ArgumentException($"{Name}: expects [N, {Channels}], got {input}");
}
