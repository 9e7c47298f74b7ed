// ReLU over a tensor of any shape. It keeps its output for Backward (dx = dy·[y > 0]) and has no parameters.
// Accumulation rule: dx = (no parameter gradients).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class Relu<T>(IBackend<T> backend, string name) : Layer<T>(backend, name) where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Shape _planned;
    private int _batch;

    public override Shape Plan(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        var layout = input.Rank == 4 ? Layout.NCHW : Layout.RowMajor;
        _planned = input;
        _y = arena.Reserve(Name + ".y", input, layout);
        _dx = inputGradient == InputGradient.Compute ? arena.Reserve(Name + ".dx", input, layout) : null;
        return input;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        _batch = Shapes.CheckBatch(Name, x.Shape, _planned);
        var y = _y!.Batch(_batch);
        Backend.ReluForward(y, x);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var y = _y!.Batch(_batch);
        CheckGradient(dy, y, Name);
        if (_dx is null) return default;
        var dx = _dx.Batch(_batch);
        Backend.ReluBackward(dx, dy, y);
        return dx;
    }
}
