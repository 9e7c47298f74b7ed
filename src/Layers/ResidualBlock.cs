// The residual join shared by BasicBlock and Bottleneck: out = ReLU(main(x) + shortcut(x)), where the
// shortcut is the identity, or a 1×1 strided convolution + BatchNorm ("{prefix}.downsample.0/.1") when the
// stride or the channel count changes. The sum and the ReLU are written in place over the last BN's output
// (BN's backward does not read its output), so the block's output is that buffer.
// Accumulation rule: parameter gradients += (children); activation gradients = except at the join, where
// the input gradient is the SUM of both branches: Backward first runs the shortcut (its dx, or dsum for the
// identity, stays live), then the main path, whose first convolution overwrites its dx buffer; then
// Add(dx, dx, shortcut dx) adds the shortcut's contribution in place (Add may alias) and that buffer is the
// block's dx. The shortcut backward always runs, for its parameter gradients, even when dx is skipped.
// Backward runs the leaves in exactly the reverse of their planning ticks (join, shortcut, main), which is
// what lets the arena share gradient memory between them.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public abstract class ResidualBlock<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Sequential<T> _main;
    private readonly Sequential<T>? _shortcut;
    private ArenaSlot<T>? _dsum;
    private InputGradient _inputGradient;
    private Tensor<T> _output;

    protected ResidualBlock(ParameterStore<T> store, string prefix, int inChannels, int outChannels, int stride)
        : base(store.Backend, prefix)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        Stride = stride;
        _main = new Sequential<T>(store.Backend, prefix + ".main");
        BuildMain(store, _main);
        if (stride != 1 || inChannels != outChannels)
        {
            _shortcut = new Sequential<T>(store.Backend, Join(prefix, "downsample"));
            _shortcut.Add(new Conv2d<T>(store, Join(prefix, "downsample.0"), inChannels, outChannels, 1, stride, 0));
            _shortcut.Add(new BatchNorm2d<T>(store, Join(prefix, "downsample.1"), outChannels));
        }
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }
    public bool HasProjection => _shortcut is not null;

    /// <summary>Adds the residual branch to <paramref name="main"/>: convolutions, BNs and inner in-place ReLUs,
    /// ending with a BatchNorm (whose output the join overwrites) and no final ReLU.</summary>
    protected abstract void BuildMain(ParameterStore<T> store, Sequential<T> main);

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 4 || input[1] != InChannels) throw new ArgumentException($"{Name}: expects [N, {InChannels}, H, W], got {input}");
        if (_main.Layers[^1] is not BatchNormBase<T>) throw new InvalidOperationException($"{Name}: the residual branch must end with a BatchNorm");
        _inputGradient = inputGradient;
        var output = _main.Plan(arena, input, inputGradient);
        if (_shortcut is not null)
        {
            var shortcut = _shortcut.Plan(arena, input, inputGradient);
            if (shortcut != output) throw new InvalidOperationException($"{Name}: shortcut {shortcut} and residual {output} shapes differ");
            // The shortcut's dx waits for the final Add, after the main path.
            _shortcut.InputGradientSlot?.ExtendTo(FirstTick);
        }
        else if (output != input)
        {
            throw new InvalidOperationException($"{Name}: identity shortcut needs the residual output {output} to equal the input {input}");
        }
        // dsum is read by the main path's last layer, by the shortcut and, for the identity, by the final Add.
        _dsum = arena.ReserveGradient(Name + ".dsum", output, Layout.NCHW, arena.NextTick());
        _dsum.ExtendTo(FirstTick);
        InputGradientSlot = inputGradient == InputGradient.Compute ? _main.InputGradientSlot : null;
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_dsum, Name);
        var residual = _main.Forward(x);
        var shortcut = _shortcut is null ? x : _shortcut.Forward(x);
        Backend.Add(residual, residual, shortcut);
        Backend.ReluForward(residual, residual);
        _output = residual;
        return residual;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        CheckGradient(dy, _output, Name);
        var dsum = _dsum!.Batch(_output.Shape[0]);
        Backend.ReluBackward(dsum, dy, _output);
        var dxShortcut = _shortcut is null ? dsum : _shortcut.Backward(dsum);
        var dxMain = _main.Backward(dsum);
        if (_inputGradient == InputGradient.Skip) return default;
        Backend.Add(dxMain, dxMain, dxShortcut);
        return dxMain;
    }

    public override void SetMode(NormMode mode)
    {
        _main.SetMode(mode);
        _shortcut?.SetMode(mode);
    }

    public override IEnumerable<Layer<T>> Children => _shortcut is null ? [_main] : [_main, _shortcut];
}

/// <summary>ResNet-18/34 block: 3×3 conv (stride) → BN → ReLU → 3×3 conv → BN, plus the shortcut, then ReLU.</summary>
public sealed class BasicBlock<T> : ResidualBlock<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int Expansion = 1;

    public BasicBlock(ParameterStore<T> store, string prefix, int inChannels, int planes, int stride)
        : base(store, prefix, inChannels, planes * Expansion, stride) { }

    protected override void BuildMain(ParameterStore<T> store, Sequential<T> main)
    {
        var b = store.Backend;
        main.Add(new Conv2d<T>(store, Join(Name, "conv1"), InChannels, OutChannels, 3, Stride, 1));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn1"), OutChannels));
        main.Add(new Relu<T>(b, Join(Name, "relu1"), ReluPlacement.InPlace));
        main.Add(new Conv2d<T>(store, Join(Name, "conv2"), OutChannels, OutChannels, 3, 1, 1));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn2"), OutChannels));
    }
}

/// <summary>ResNet-50 block (torchvision v1.5: the stride sits on the 3×3 conv): 1×1 conv → BN → ReLU →
/// 3×3 conv (stride) → BN → ReLU → 1×1 conv to 4·planes → BN, plus the shortcut, then ReLU.</summary>
public sealed class Bottleneck<T> : ResidualBlock<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int Expansion = 4;

    public Bottleneck(ParameterStore<T> store, string prefix, int inChannels, int planes, int stride)
        : base(store, prefix, inChannels, planes * Expansion, stride) { }

    public int Planes => OutChannels / Expansion;

    protected override void BuildMain(ParameterStore<T> store, Sequential<T> main)
    {
        var b = store.Backend;
        main.Add(new Conv2d<T>(store, Join(Name, "conv1"), InChannels, Planes, 1, 1, 0));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn1"), Planes));
        main.Add(new Relu<T>(b, Join(Name, "relu1"), ReluPlacement.InPlace));
        main.Add(new Conv2d<T>(store, Join(Name, "conv2"), Planes, Planes, 3, Stride, 1));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn2"), Planes));
        main.Add(new Relu<T>(b, Join(Name, "relu2"), ReluPlacement.InPlace));
        main.Add(new Conv2d<T>(store, Join(Name, "conv3"), Planes, OutChannels, 1, 1, 0));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn3"), OutChannels));
    }
}
