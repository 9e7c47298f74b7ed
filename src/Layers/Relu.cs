// ReLU over a tensor of any shape, with no parameters. Backward needs only the output: dx = dy·[y > 0].
// InPlace overwrites the input with the output (no extra buffer). ResNet and the head use it after every
// BatchNorm, whose output nothing else reads (BN's backward needs its input, not its output).
// Accumulation rule: dx = (no parameter gradients).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

/// <summary>Where a ReLU writes: its own buffer, or over its input.</summary>
public enum ReluPlacement { Separate, InPlace }

public sealed class Relu<T>(IBackend<T> backend, string name, ReluPlacement placement = ReluPlacement.Separate)
    : Layer<T>(backend, name) where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Shape _planned;
    private Tensor<T> _output;
    private bool _isPlanned;

    public ReluPlacement Placement { get; } = placement;

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        var layout = input.Rank == 4 ? Layout.NCHW : Layout.RowMajor;
        _planned = input;
        _y = Placement == ReluPlacement.Separate ? arena.Reserve(Name + ".y", input, layout) : null;
        _dx = ReserveLeafInputGradient(arena, input, layout, inputGradient);
        _isPlanned = true;
        return input;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        if (!_isPlanned) throw new InvalidOperationException($"{Name}: Plan has not been called");
        int batch = Shapes.CheckBatch(Name, x.Shape, _planned);
        _output = _y is null ? x : _y.Batch(batch);
        Backend.ReluForward(_output, x);
        return _output;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        CheckGradient(dy, _output, Name);
        if (_dx is null) return default;
        var dx = _dx.Batch(_output.Shape[0]);
        Backend.ReluBackward(dx, dy, _output);
        return dx;
    }
}
