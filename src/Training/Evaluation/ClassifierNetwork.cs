// The network of the fine-tuning protocol: a ResNet encoder with a new linear classifier "fc" on its pooled
// features h (torchvision's name for ResNet's classifier, so the encoder keeps its state_dict names), trained
// end to end with softmax cross-entropy. It is built from the same layers as SimClrModel over one
// ParameterStore and one ActivationArena planned for B rows. A step: Parameters.ZeroGradients();
// Forward(images, labels) (training mode: BN normalizes with the batch's statistics and updates its running
// ones); Backward(); an optimizer over Parameters. Classify runs in inference mode (BN running statistics).
// The classifier starts at zero, as the SimCLR reference code's zero_init_logits_layer does when fine-tuning, so
// the first steps cannot be pulled around by a random head.
// Accumulation rule: Backward ADDS into the parameter gradients (zero them once per step) and overwrites every
// activation gradient, the input gradient included when it is requested.
using System.Numerics;
using SimClr.Kernels;
using SimClr.Layers;

namespace SimClr.Training.Evaluation;

public sealed class ClassifierNetwork<T> : IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    public const string ClassifierName = "fc";
    public const string ClassifierPrefix = ClassifierName + ".";

    private readonly ActivationArena<T> _arena;
    private readonly ArenaSlot<T> _loss, _probs, _dlogits;
    private Tensor<int> _labels;
    private Tensor<T> _inputGradient;
    private ClassShape _shape;
    private int _disposed;

    /// <param name="batch">Rows planned for (Forward and Classify accept fewer).</param>
    /// <param name="inputGradient">Compute makes Backward write dL/d(images) (tests); training skips it.</param>
    public ClassifierNetwork(IBackend<T> backend, ResNetArch arch, StemKind stem, double widthMultiplier, int classes,
        int height, int width, int batch, ulong seed, InputGradient inputGradient = InputGradient.Skip)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"a classifier needs at least 2 classes, got {classes}");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        Backend = backend;
        Classes = classes;
        InputGradientMode = inputGradient;
        Parameters = new ParameterStore<T>(backend);
        try
        {
            Encoder = new ResNet<T>(Parameters, arch, stem, widthMultiplier);
            Classifier = new Linear<T>(Parameters, ClassifierName, Encoder.FeatureDim, classes, LinearBias.Learned);
            Parameters.Allocate(seed);
            ZeroClassifier();

            InputShape = new Shape(batch, 3, height, width);
            _arena = new ActivationArena<T>(backend);
            var h = Encoder.Plan(_arena, InputShape, inputGradient);
            var logits = Classifier.Plan(_arena, h, InputGradient.Compute);
            _loss = _arena.Reserve("ce.loss", new Shape(1));
            _probs = _arena.Reserve("ce.probs", logits);
            _dlogits = _arena.ReserveGradient("ce.dlogits", logits, Layout.RowMajor, _arena.NextTick());
            // dlogits is read by the classifier's backward, dh by the encoder's pooling layer.
            _dlogits.ExtendTo(Classifier.FirstTick);
            Classifier.InputGradientSlot!.ExtendTo(Encoder.Layers[^1].FirstTick);
            _arena.Allocate();
        }
        catch
        {
            Parameters.Dispose();
            _arena?.Dispose();
            throw;
        }
    }

    public IBackend<T> Backend { get; }
    public ParameterStore<T> Parameters { get; }
    public ResNet<T> Encoder { get; }
    public Linear<T> Classifier { get; }
    public int Classes { get; }
    public InputGradient InputGradientMode { get; }
    /// <summary>[B, 3, H, W]: the planned input.</summary>
    public Shape InputShape { get; }
    public int FeatureDim => Encoder.FeatureDim;

    /// <summary>Encoder features h of the last Forward or Classify (a device view, valid until the next call).</summary>
    public Tensor<T> Features { get; private set; }

    /// <summary>Sets the classifier's weight and bias to zero.</summary>
    public void ZeroClassifier()
    {
        Backend.Fill(Classifier.Weight.Value, 0);
        Backend.Fill(Classifier.Bias!.Value, 0);
    }

    /// <summary>Training-mode forward of <paramref name="images"/> [R, 3, H, W] (R ≤ B) with their labels [R].
    /// Returns the mean cross-entropy as a one-element device tensor; nothing is synchronized.</summary>
    public Tensor<T> Forward(Tensor<T> images, Tensor<int> labels)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        int rows = images.Shape[0];
        if (labels.Length != rows) throw new ArgumentException($"{labels.Length} labels for {rows} images", nameof(labels));
        Encoder.SetMode(NormMode.Training);
        Features = Encoder.Forward(images);
        var logits = Classifier.Forward(Features);
        _shape = new ClassShape(rows, Classes);
        _labels = labels;
        _inputGradient = default;
        var loss = _loss.View;
        Backend.SoftmaxCrossEntropyForward(loss, _probs.Batch(rows), logits, labels, _shape);
        return loss;
    }

    /// <summary>Adds dLoss/dθ into Parameters.Gradients (scaled by <paramref name="lossGrad"/>).</summary>
    public void Backward(double lossGrad = 1.0)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_labels.IsEmpty) throw new InvalidOperationException("Backward before Forward");
        var dlogits = _dlogits.Batch(_shape.Batch);
        Backend.SoftmaxCrossEntropyBackward(dlogits, _probs.Batch(_shape.Batch), _labels, _shape, lossGrad);
        var dh = Classifier.Backward(dlogits);
        _inputGradient = Encoder.Backward(dh);
    }

    /// <summary>dLoss/d(images) from the last Backward; needs InputGradient.Compute.</summary>
    public Tensor<T> ImagesGradient => InputGradientMode != InputGradient.Compute
        ? throw new InvalidOperationException("the network was built without InputGradient.Compute")
        : _inputGradient.IsEmpty ? throw new InvalidOperationException("no Backward has run since the last Forward") : _inputGradient;

    /// <summary>Inference-mode logits [R, Classes] of <paramref name="images"/> [R, 3, H, W] (R ≤ B), with the
    /// features h in <see cref="Features"/>. Parameters and running statistics are untouched.</summary>
    public Tensor<T> Classify(Tensor<T> images)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Encoder.SetMode(NormMode.Inference);
        try
        {
            Features = Encoder.Forward(images);
            return Classifier.Forward(Features);
        }
        finally
        {
            Encoder.SetMode(NormMode.Training);
            _labels = default;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _arena.Dispose();
        Parameters.Dispose();
    }
}
