// Fully connected layer y[N, Out] = x[N, In]·Wᵀ + b with W stored [Out, In] as in PyTorch ("{name}.weight",
// optional "{name}.bias"), both initialized U(−1/√In, 1/√In) as nn.Linear does. The bias is flagged
// NoWeightDecay|NoAdaptation (SimCLR excludes biases from weight decay and LARS).
// Accumulation rule: dW +=, db +=, dx =.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public enum LinearBias { None, Learned }

public sealed class Linear<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Tensor<T> _x;
    private LinearShape _shape;
    private int _plannedBatch;

    public Linear(ParameterStore<T> store, string name, int inFeatures, int outFeatures, LinearBias bias) : base(store.Backend, name)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"{name}: invalid linear layer {inFeatures} → {outFeatures}");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = store.AddParameter(Join(name, "weight"), new Shape(outFeatures, inFeatures), ParamInit.UniformFanIn(inFeatures));
        Bias = bias == LinearBias.Learned
            ? store.AddParameter(Join(name, "bias"), new Shape(outFeatures), ParamInit.UniformFanIn(inFeatures), SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation)
            : null;
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public ParameterSlot<T> Weight { get; }
    public ParameterSlot<T>? Bias { get; }

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 2 || input[1] != InFeatures) throw new ArgumentException($"{Name}: expects [N, {InFeatures}], got {input}");
        _plannedBatch = input[0];
        var output = new Shape(input[0], OutFeatures);
        _y = arena.Reserve(Name + ".y", output);
        _dx = ReserveLeafInputGradient(arena, input, Layout.RowMajor, inputGradient);
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        int n = Shapes.CheckBatch(Name, x.Shape, new Shape(_plannedBatch, InFeatures));
        _x = x;
        _shape = new LinearShape(n, InFeatures, OutFeatures);
        var y = _y!.Batch(n);
        Backend.LinearForward(y, x, Weight.Value, Bias is null ? default : Bias.Value, _shape);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        CheckGradient(dy, _y!.Batch(_shape.Batch), Name);
        Backend.LinearBackwardWeights(Weight.Gradient, Bias is null ? default : Bias.Gradient, dy, _x, _shape);
        if (_dx is null) return default;
        var dx = _dx.Batch(_shape.Batch);
        Backend.LinearBackwardData(dx, dy, Weight.Value, _shape);
        return dx;
    }
}
