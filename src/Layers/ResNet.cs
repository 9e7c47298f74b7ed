// ResNet-18/34/50 encoders as in torchvision (v1.5 Bottleneck), without the fc layer: the output is the
// globally pooled feature h (512·w channels for 18/34, 2048·w for 50). The width multiplier scales every
// stage (base width 64·w must be a whole number). Two stems: ImageNet (7×7/2 conv, pad 3, then 3×3/2
// max-pool) and CIFAR (3×3/1 conv, pad 1, no max-pool). Parameter names are torchvision's state_dict names
// with no prefix ("conv1.weight", "layer1.0.downsample.1.running_var", ...).
// Accumulation rule: that of the children; parameter gradients +=, activation gradients =, residual joins
// summed inside each block.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public enum ResNetArch { ResNet18, ResNet34, ResNet50 }

public enum StemKind { ImageNet, Cifar }

public sealed class ResNet<T> : Sequential<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public ResNet(ParameterStore<T> store, ResNetArch arch, StemKind stem, double widthMultiplier, int inChannels = 3)
        : base(store.Backend, "encoder")
    {
        if (inChannels <= 0) throw new ArgumentOutOfRangeException(nameof(inChannels), $"input channels must be positive, got {inChannels}");
        Arch = arch;
        Stem = stem;
        BaseWidth = BaseWidthOf(widthMultiplier);
        var b = store.Backend;
        if (stem == StemKind.ImageNet)
        {
            Add(new Conv2d<T>(store, "conv1", inChannels, BaseWidth, 7, 2, 3));
            Add(new BatchNorm2d<T>(store, "bn1", BaseWidth));
            Add(new Relu<T>(b, "relu", ReluPlacement.InPlace));
            Add(new MaxPool2d<T>(b, "maxpool", 3, 2, 1));
        }
        else
        {
            Add(new Conv2d<T>(store, "conv1", inChannels, BaseWidth, 3, 1, 1));
            Add(new BatchNorm2d<T>(store, "bn1", BaseWidth));
            Add(new Relu<T>(b, "relu", ReluPlacement.InPlace));
        }
        var blocks = BlocksPerStage(arch);
        int channels = BaseWidth;
        for (int stage = 0; stage < 4; stage++)
        {
            int planes = BaseWidth << stage;
            for (int i = 0; i < blocks[stage]; i++)
            {
                int stride = stage > 0 && i == 0 ? 2 : 1;
                string prefix = $"layer{stage + 1}.{i}";
                ResidualBlock<T> block = arch == ResNetArch.ResNet50
                    ? new Bottleneck<T>(store, prefix, channels, planes, stride)
                    : new BasicBlock<T>(store, prefix, channels, planes, stride);
                Add(block);
                channels = block.OutChannels;
            }
        }
        Add(new GlobalAvgPool<T>(b, "avgpool"));
        FeatureDim = channels;
    }

    public ResNetArch Arch { get; }
    public StemKind Stem { get; }
    /// <summary>Channels after the stem: 64·w.</summary>
    public int BaseWidth { get; }
    /// <summary>Size of the pooled feature h: 512·w (18/34) or 2048·w (50).</summary>
    public int FeatureDim { get; }

    public static int[] BlocksPerStage(ResNetArch arch) => arch switch
    {
        ResNetArch.ResNet18 => [2, 2, 2, 2],
        ResNetArch.ResNet34 => [3, 4, 6, 3],
        ResNetArch.ResNet50 => [3, 4, 6, 3],
        _ => throw new ArgumentOutOfRangeException(nameof(arch), $"unknown architecture {arch}"),
    };

    public static int BaseWidthOf(double widthMultiplier)
    {
        double width = 64 * widthMultiplier;
        int rounded = (int)Math.Round(width);
        if (!(widthMultiplier > 0) || rounded < 1 || Math.Abs(width - rounded) > 1e-9)
            throw new ArgumentOutOfRangeException(nameof(widthMultiplier), $"width multiplier {widthMultiplier} must make 64·w a positive whole number of channels");
        return rounded;
    }

    public static int FeatureDimOf(ResNetArch arch, double widthMultiplier) =>
        (BaseWidthOf(widthMultiplier) << 3) * (arch == ResNetArch.ResNet50 ? Bottleneck<T>.Expansion : BasicBlock<T>.Expansion);
}
