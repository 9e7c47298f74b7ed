// Max pooling over NCHW (ResNet's ImageNet stem: 3×3 window, stride 2, padding 1). Backward routes each dy
// to the first maximum of its window, which the backend finds again from the saved input and output.
// Accumulation rule: dx = (no parameters).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class MaxPool2d<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Shape _planned;
    private Tensor<T> _x;
    private PoolShape _shape;

    public MaxPool2d(IBackend<T> backend, string name, int window = 3, int stride = 2, int pad = 1) : base(backend, name)
    {
        if (window <= 0 || stride <= 0 || pad < 0 || 2 * pad > window)
            throw new ArgumentException($"{name}: invalid pooling window={window} stride={stride} pad={pad} (padding may be at most half the window)");
        Window = window;
        Stride = stride;
        Pad = pad;
    }

    public int Window { get; }
    public int Stride { get; }
    public int Pad { get; }

    private PoolShape ShapeFor(Shape x) => new(x[0], x[1], x[2], x[3], Window, Stride, Pad);

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 4) throw new ArgumentException($"{Name}: expects [N, C, H, W], got {input}");
        var s = ShapeFor(input);
        if (s.OutHeight <= 0 || s.OutWidth <= 0) throw new ArgumentException($"{Name}: input {input} is smaller than the {Window}×{Window} window");
        _planned = input;
        var output = new Shape(input[0], input[1], s.OutHeight, s.OutWidth);
        _y = arena.Reserve(Name + ".y", output, Layout.NCHW);
        _dx = ReserveLeafInputGradient(arena, input, Layout.NCHW, inputGradient);
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        int n = Shapes.CheckBatch(Name, x.Shape, _planned);
        _x = x;
        _shape = ShapeFor(x.Shape);
        var y = _y!.Batch(n);
        Backend.MaxPoolForward(y, x, _shape);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var y = _y!.Batch(_shape.Batch);
        CheckGradient(dy, y, Name);
        if (_dx is null) return default;
        var dx = _dx.Batch(_shape.Batch);
        Backend.MaxPoolBackward(dx, dy, y, _x, _shape);
        return dx;
    }
}
