// Conv2d without bias (ResNet's convolutions are followed by BatchNorm), NCHW, square kernel, weights
// [Cout, Cin, K, K] registered as "{name}.weight" with torchvision's Kaiming-normal fan_out initialization.
// Accumulation rule: dW += (Conv2dBackwardFilter), dx = (Conv2dBackwardData, skipped when not needed).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class Conv2d<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _y, _dx;
    private Shape _planned;
    private Tensor<T> _x;
    private Conv2dShape _shape;

    public Conv2d(ParameterStore<T> store, string name, int inChannels, int outChannels, int kernel, int stride = 1, int pad = 0)
        : base(store.Backend, name)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernel <= 0 || stride <= 0 || pad < 0)
            throw new ArgumentException($"{name}: invalid convolution in={inChannels} out={outChannels} kernel={kernel} stride={stride} pad={pad}");
        InChannels = inChannels;
        OutChannels = outChannels;
        Kernel = kernel;
        Stride = stride;
        Pad = pad;
        Weight = store.AddParameter(Join(name, "weight"), new Shape(outChannels, inChannels, kernel, kernel),
            ParamInit.KaimingNormalFanOut((long)outChannels * kernel * kernel));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int Stride { get; }
    public int Pad { get; }
    public ParameterSlot<T> Weight { get; }

    private Conv2dShape ShapeFor(int batch, int h, int w) =>
        new(batch, InChannels, h, w, OutChannels, Kernel, Kernel, Stride, Stride, Pad, Pad);

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 4 || input[1] != InChannels)
            throw new ArgumentException($"{Name}: expects [N, {InChannels}, H, W], got {input}");
        var s = ShapeFor(input[0], input[2], input[3]);
        s.Validate();
        _planned = input;
        var output = new Shape(input[0], OutChannels, s.OutHeight, s.OutWidth);
        _y = arena.Reserve(Name + ".y", output, Layout.NCHW);
        _dx = ReserveLeafInputGradient(arena, input, Layout.NCHW, inputGradient);
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_y, Name);
        int n = Shapes.CheckBatch(Name, x.Shape, _planned);
        _x = x;
        _shape = ShapeFor(n, x.Shape[2], x.Shape[3]);
        var y = _y!.Batch(n);
        Backend.Conv2dForward(y, x, Weight.Value, _shape);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        CheckGradient(dy, _y!.Batch(_shape.Batch), Name);
        Backend.Conv2dBackwardFilter(Weight.Gradient, dy, _x, _shape);
        if (_dx is null) return default;
        var dx = _dx.Batch(_shape.Batch);
        Backend.Conv2dBackwardData(dx, dy, Weight.Value, _shape);
        return dx;
    }
}
