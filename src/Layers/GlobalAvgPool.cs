// Global average pooling [N, C, H, W] → [N, C]: the encoder's output h. No parameters, nothing saved
// beyond the sizes. Accumulation rule: dx = (dy/(H·W) broadcast over each channel).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class GlobalAvgPool<T>(IBackend<T> backend, string name) : Layer<T>(backend, name) where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Shape _planned;
    private int _batch;

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 4) throw new ArgumentException($"{Name}: expects [N, C, H, W], got {input}");
        _planned = input;
        var output = new Shape(input[0], input[1]);
        _y = arena.Reserve(Name + ".y", output);
        _dx = ReserveLeafInputGradient(arena, input, Layout.NCHW, inputGradient);
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        _batch = Shapes.CheckBatch(Name, x.Shape, _planned);
        var y = _y!.Batch(_batch);
        Backend.GlobalAvgPoolForward(y, x, _batch, _planned[1], _planned[2] * _planned[3]);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        CheckGradient(dy, _y!.Batch(_batch), Name);
        if (_dx is null) return default;
        var dx = _dx.Batch(_batch);
        Backend.GlobalAvgPoolBackward(dx, dy, _batch, _planned[1], _planned[2] * _planned[3]);
        return dx;
    }
}
