// The residual join shared by BasicBlock and Bottleneck: out = ReLU(main(x) + shortcut(x)), where the
// shortcut is the identity, or a 1×1 strided convolution + BatchNorm ("{prefix}.downsample.0/.1") when the
// stride or the channel count changes.
// Accumulation rule: parameter gradients += (children); activation gradients = except at the join, where
// the input gradient is the SUM of both branches: the main path's first convolution overwrites its dx
// buffer, then Add(dx, dx, shortcut dx) adds the shortcut's contribution in place (Add may alias), and that
// buffer is returned as the block's dx. The shortcut backward always runs, for its parameter gradients,
// even when the block's input gradient is skipped.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public abstract class ResidualBlock<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Sequential<T> _main;
    private readonly Conv2d<T>? _downConv;
    private readonly BatchNorm2d<T>? _downBn;
    private ArenaSlot<T>? _sum, _out, _dsum;
    private InputGradient _inputGradient;
    private int _batch;

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
            _downConv = new Conv2d<T>(store, Join(prefix, "downsample.0"), inChannels, outChannels, 1, stride, 0);
            _downBn = new BatchNorm2d<T>(store, Join(prefix, "downsample.1"), outChannels);
        }
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }
    public bool HasProjection => _downConv is not null;

    /// <summary>Adds the residual branch (convolutions, BNs, inner ReLUs; no final ReLU) to <paramref name="main"/>.</summary>
    protected abstract void BuildMain(ParameterStore<T> store, Sequential<T> main);

    public override Shape Plan(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (input.Rank != 4 || input[1] != InChannels) throw new ArgumentException($"{Name}: expects [N, {InChannels}, H, W], got {input}");
        _inputGradient = inputGradient;
        var output = _main.Plan(arena, input, inputGradient);
        if (_downConv is not null)
        {
            // The shortcut needs its own dx only when the block's dx is wanted; its parameter grads are always computed.
            var shortcut = _downBn!.Plan(arena, _downConv.Plan(arena, input, inputGradient), InputGradient.Compute);
            if (shortcut != output) throw new InvalidOperationException($"{Name}: shortcut {shortcut} and residual {output} shapes differ");
        }
        else if (output != input)
        {
            throw new InvalidOperationException($"{Name}: identity shortcut needs the residual output {output} to equal the input {input}");
        }
        _sum = arena.Reserve(Name + ".sum", output, Layout.NCHW);
        _out = arena.Reserve(Name + ".y", output, Layout.NCHW);
        _dsum = arena.Reserve(Name + ".dsum", output, Layout.NCHW);
        return output;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        CheckPlanned(_out, Name);
        _batch = x.Shape[0];
        var residual = _main.Forward(x);
        var shortcut = _downConv is null ? x : _downBn!.Forward(_downConv.Forward(x));
        var sum = _sum!.Batch(_batch);
        var y = _out!.Batch(_batch);
        Backend.Add(sum, residual, shortcut);
        Backend.ReluForward(y, sum);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var y = _out!.Batch(_batch);
        CheckGradient(dy, y, Name);
        var dsum = _dsum!.Batch(_batch);
        Backend.ReluBackward(dsum, dy, y);
        var dxMain = _main.Backward(dsum);
        var dxShortcut = _downConv is null ? dsum : _downConv.Backward(_downBn!.Backward(dsum));
        if (_inputGradient == InputGradient.Skip) return default;
        Backend.Add(dxMain, dxMain, dxShortcut);
        return dxMain;
    }

    public override void SetMode(NormMode mode)
    {
        _main.SetMode(mode);
        _downBn?.SetMode(mode);
    }
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
        main.Add(new Relu<T>(b, Join(Name, "relu1")));
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
        main.Add(new Relu<T>(b, Join(Name, "relu1")));
        main.Add(new Conv2d<T>(store, Join(Name, "conv2"), Planes, Planes, 3, Stride, 1));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn2"), Planes));
        main.Add(new Relu<T>(b, Join(Name, "relu2")));
        main.Add(new Conv2d<T>(store, Join(Name, "conv3"), Planes, OutChannels, 1, 1, 0));
        main.Add(new BatchNorm2d<T>(store, Join(Name, "bn3"), OutChannels));
    }
}
