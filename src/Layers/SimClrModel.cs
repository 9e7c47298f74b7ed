// The SimCLR model the trainer drives: ResNet encoder f, projection head g and the NT-Xent loss, over one
// ParameterStore (encoder names as torchvision, head names under "head.") and one activation arena planned
// for 2B rows. A step is: Parameters.ZeroGradients(); Forward(views) (loss stays on the device); Backward();
// then an optimizer over Parameters. EncodeFeatures runs the encoder alone in inference mode for evaluation.
// Accumulation rule: Backward ADDS into the parameter gradients (zero them once per step) and overwrites
// every activation gradient, including the input gradient when it is requested.
// Data parallelism: Distribute(group, sync) makes the loss global (NtXentLoss's distributed mode) and, with
// BatchNormSync.Synchronized, every BN layer of the encoder and the head synchronized; its buffers (the gathered z,
// log-sum-exps and norms, and the BN sums) are allocated once there and owned by the model. The model is then
// built for this rank's pairs (BatchSize = B / ranks); after Backward the caller all-reduces the gradients.
using System.Numerics;
using SimClr.Kernels;
using SimClr.Kernels.Distributed;

namespace SimClr.Layers;

/// <summary>What to build. <see cref="BatchSize"/> is B, the number of positive pairs: inputs have 2B rows.</summary>
public sealed record SimClrModelConfig
{
    public ResNetArch Arch { get; init; } = ResNetArch.ResNet18;
    public StemKind Stem { get; init; } = StemKind.Cifar;
    public double WidthMultiplier { get; init; } = 1.0;
    public int InputChannels { get; init; } = 3;
    public int ImageHeight { get; init; } = 32;
    public int ImageWidth { get; init; } = 32;
    public int BatchSize { get; init; } = 256;
    /// <summary>Hidden width of the head; null means the encoder's feature size (as in SimCLR).</summary>
    public int? HeadHiddenDim { get; init; }
    public int HeadOutputDim { get; init; } = 128;
    /// <summary>Linear layers in the head: 2 (SimCLR v1) or 3 (SimCLR v2).</summary>
    public int HeadLayers { get; init; } = 2;
    public double Temperature { get; init; } = 0.5;
    public ulong Seed { get; init; }
    /// <summary>Compute dL/d(views) in Backward (tests); training skips it.</summary>
    public InputGradient InputGradient { get; init; } = InputGradient.Skip;

    public void Validate()
    {
        ResNet<float>.BaseWidthOf(WidthMultiplier);
        if (InputChannels <= 0) throw new ArgumentException($"InputChannels must be positive, got {InputChannels}");
        if (ImageHeight <= 0 || ImageWidth <= 0) throw new ArgumentException($"image size must be positive, got {ImageHeight}×{ImageWidth}");
        if (BatchSize <= 0) throw new ArgumentException($"BatchSize (positive pairs) must be positive, got {BatchSize}");
        if (HeadHiddenDim is <= 0) throw new ArgumentException($"HeadHiddenDim must be positive, got {HeadHiddenDim}");
        if (HeadOutputDim <= 0) throw new ArgumentException($"HeadOutputDim must be positive, got {HeadOutputDim}");
        if (HeadLayers is < 2 or > 3) throw new ArgumentException($"HeadLayers must be 2 or 3, got {HeadLayers}");
        new NtXentShape(2, 1, Temperature).Validate();
    }
}

public sealed class SimClrModel<T> : IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ActivationArena<T> _arena;
    private Tensor<T> _inputGradient;
    private Storage<T>? _gathered;
    private Storage<double>? _batchNormSums;
    private int _disposed;

    public SimClrModel(IBackend<T> backend, SimClrModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Backend = backend;
        Parameters = new ParameterStore<T>(backend);
        try
        {
            Encoder = new ResNet<T>(Parameters, config.Arch, config.Stem, config.WidthMultiplier, config.InputChannels);
            Head = new ProjectionHead<T>(Parameters, Encoder.FeatureDim, config.HeadHiddenDim ?? Encoder.FeatureDim, config.HeadOutputDim, config.HeadLayers);
            Loss = new NtXentLoss<T>(backend, config.Temperature);
            Parameters.Allocate(config.Seed);

            InputShape = new Shape(2 * config.BatchSize, config.InputChannels, config.ImageHeight, config.ImageWidth);
            _arena = new ActivationArena<T>(backend);
            var h = Encoder.Plan(_arena, InputShape, config.InputGradient);
            var z = Head.Plan(_arena, h, InputGradient.Compute);
            Loss.Plan(_arena, z);
            // dz is read by the head's last layer, dh by the encoder's pooling layer.
            Loss.GradientSlot!.ExtendTo(Head.Layers[^1].FirstTick);
            Head.InputGradientSlot!.ExtendTo(Encoder.Layers[^1].FirstTick);
            _arena.Allocate();
        }
        catch
        {
            Parameters.Dispose();
            _arena?.Dispose();
            throw;
        }
    }

    public SimClrModelConfig Config { get; }
    public IBackend<T> Backend { get; }
    public ParameterStore<T> Parameters { get; }
    public ResNet<T> Encoder { get; }
    public ProjectionHead<T> Head { get; }
    public NtXentLoss<T> Loss { get; }

    /// <summary>The group the model trains over (null until <see cref="Distribute"/>).</summary>
    public ICommunicator? Group { get; private set; }

    /// <summary>How the batch norm statistics are taken while distributed.</summary>
    public BatchNormSync BatchNormSync { get; private set; } = BatchNormSync.Local;

    /// <summary>Every batch norm layer of the encoder and the head, in forward order.</summary>
    public IEnumerable<BatchNormBase<T>> BatchNorms =>
        Encoder.SelfAndDescendants().Concat(Head.SelfAndDescendants()).OfType<BatchNormBase<T>>();

    /// <summary>Trains over the global batch of <paramref name="group"/>'s ranks from now on (call once, before the
    /// first Forward; every rank's model has the same config). The loss becomes the global NT-Xent; with
    /// <see cref="BatchNormSync.Synchronized"/> every BN layer takes its statistics over the global batch.</summary>
    public void Distribute(ICommunicator group, BatchNormSync sync)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ArgumentNullException.ThrowIfNull(group);
        if (Group is not null) throw new InvalidOperationException("the model is already distributed");
        var (zLength, rowLength) = Loss.GatheredLengths(group.Size);
        _gathered = Backend.Allocate<T>(zLength + 2 * rowLength);
        Loss.Distribute(group, new Tensor<T>(_gathered, 0, new Shape(checked((int)zLength))),
            new Tensor<T>(_gathered, zLength, new Shape(checked((int)rowLength))), new Tensor<T>(_gathered, zLength + rowLength, new Shape(checked((int)rowLength))));
        if (sync == BatchNormSync.Synchronized)
        {
            var layers = BatchNorms.ToList();
            _batchNormSums = Backend.Allocate<double>(Math.Max(1, layers.Sum(l => l.SynchronizedSumsLength)));
            long offset = 0;
            foreach (var bn in layers)
            {
                bn.SynchronizeStatistics(group, new Tensor<double>(_batchNormSums, offset, new Shape(checked((int)bn.SynchronizedSumsLength))));
                offset += bn.SynchronizedSumsLength;
            }
        }
        Group = group;
        BatchNormSync = sync;
    }

    /// <summary>[2B, C, H, W]: the planned input; Forward also accepts fewer (even) rows.</summary>
    public Shape InputShape { get; }
    /// <summary>Size of the encoder feature h.</summary>
    public int FeatureDim => Encoder.FeatureDim;
    /// <summary>Elements in the activation arena (one allocation).</summary>
    public long ActivationElements => _arena.Length;
    /// <summary>What the arena would hold if gradient buffers did not share memory.</summary>
    public long UnsharedActivationElements => _arena.UnsharedLength;

    /// <summary>h and z of the last Forward (device views, valid until the next Forward or EncodeFeatures).</summary>
    public Tensor<T> Features { get; private set; }
    public Tensor<T> Projections { get; private set; }

    /// <summary>Training-mode forward on views [2R, C, H, W] (R ≤ B; rows i and i+R are a positive pair).
    /// Returns the mean NT-Xent loss as a one-element device tensor; nothing is synchronized.</summary>
    public Tensor<T> Forward(Tensor<T> views)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Encoder.SetMode(NormMode.Training);
        Head.SetMode(NormMode.Training);
        Features = Encoder.Forward(views);
        Projections = Head.Forward(Features);
        _inputGradient = default;
        return Loss.Forward(Projections);
    }

    /// <summary>Adds dLoss/dθ into Parameters.Gradients (scaled by <paramref name="lossGrad"/>).</summary>
    public void Backward(double lossGrad = 1.0)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var dz = Loss.Backward(lossGrad);
        var dh = Head.Backward(dz);
        _inputGradient = Encoder.Backward(dh);
    }

    /// <summary>dLoss/d(views) from the last Backward; needs <see cref="SimClrModelConfig.InputGradient"/> = Compute.</summary>
    public Tensor<T> ViewsGradient => Config.InputGradient != InputGradient.Compute
        ? throw new InvalidOperationException("the model was built without InputGradient.Compute")
        : _inputGradient.IsEmpty ? throw new InvalidOperationException("no Backward has run since the last Forward") : _inputGradient;

    /// <summary>Encoder features h [N, FeatureDim] of <paramref name="images"/> [N, C, H, W] in inference mode
    /// (BN running statistics), in chunks of at most 2B rows. Parameters, running statistics and gradients are
    /// untouched; the next Forward returns to training mode.</summary>
    public void EncodeFeatures(Tensor<T> features, Tensor<T> images)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        int n = images.Shape.Rank == 4 ? images.Shape[0] : throw new ArgumentException($"images must be [N, C, H, W], got {images.Shape}", nameof(images));
        if (features.Shape.Rank != 2 || features.Shape[0] != n || features.Shape[1] != FeatureDim)
            throw new ArgumentException($"features must be [{n}, {FeatureDim}], got {features.Shape}", nameof(features));
        Encoder.SetMode(NormMode.Inference);
        try
        {
            int chunk = InputShape[0];
            for (int start = 0; start < n; start += chunk)
            {
                int rows = Math.Min(chunk, n - start);
                var h = Encoder.Forward(images.Rows(start, rows));
                Backend.Copy(features.Rows(start, rows), h);
            }
        }
        finally
        {
            Encoder.SetMode(NormMode.Training);
            Features = Projections = default;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _arena.Dispose();
        _gathered?.Dispose();
        _batchNormSums?.Dispose();
        Parameters.Dispose();
    }
}
