// The encoder's structure against torchvision: trainable parameter counts without fc (numbers from
// torchvision.models.resnetXX(): sum of p.numel() minus fc's 512·w·exp·1000 + 1000), state_dict names,
// order and shapes for ResNet-18 (spot list written out from torchvision's state_dict), the v1.5 stride
// placement in Bottleneck, and the width multiplier. The stores are built but never allocated.
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

public class ResNetStructureTests
{
    [Theory]
    [InlineData(ResNetArch.ResNet18, StemKind.ImageNet, 11_176_512)]
    [InlineData(ResNetArch.ResNet18, StemKind.Cifar, 11_168_832)]
    [InlineData(ResNetArch.ResNet34, StemKind.ImageNet, 21_284_672)]
    [InlineData(ResNetArch.ResNet50, StemKind.ImageNet, 23_508_032)]
    public void ParameterCountsMatchTorchvisionWithoutFc(ResNetArch arch, StemKind stem, long expected)
    {
        using var store = new ParameterStore<double>(Backend);
        var net = new ResNet<double>(store, arch, stem, 1.0);
        Assert.Equal(expected, store.ParameterCount);
        Assert.False(store.IsAllocated);
        Assert.Equal(arch == ResNetArch.ResNet50 ? 2048 : 512, net.FeatureDim);
    }

    [Fact]
    public void ResNet18NamesAndShapesMatchTorchvision()
    {
        using var store = new ParameterStore<double>(Backend);
        _ = new ResNet<double>(store, ResNetArch.ResNet18, StemKind.ImageNet, 1.0);
        // torchvision resnet18().state_dict() has 122 entries; fc.weight and fc.bias are not part of the encoder.
        Assert.Equal(120, store.Entries.Count);
        Assert.Equal(60, store.Entries.Count(e => e.Kind == StoreTensorKind.Parameter));
        Assert.Equal(
            ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
             "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
             "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked", "layer1.0.conv2.weight"],
            store.Entries.Take(13).Select(e => e.Name));
        Assert.Equal("layer4.1.bn2.num_batches_tracked", store.Entries[^1].Name);

        var expected = new (string Name, int[] Shape, StoreTensorKind Kind)[]
        {
            ("conv1.weight", [64, 3, 7, 7], StoreTensorKind.Parameter),
            ("bn1.running_var", [64], StoreTensorKind.Buffer),
            ("bn1.num_batches_tracked", [], StoreTensorKind.Counter),
            ("layer1.1.conv2.weight", [64, 64, 3, 3], StoreTensorKind.Parameter),
            ("layer2.0.conv1.weight", [128, 64, 3, 3], StoreTensorKind.Parameter),
            ("layer2.0.conv2.weight", [128, 128, 3, 3], StoreTensorKind.Parameter),
            ("layer2.0.downsample.0.weight", [128, 64, 1, 1], StoreTensorKind.Parameter),
            ("layer2.0.downsample.1.weight", [128], StoreTensorKind.Parameter),
            ("layer2.0.downsample.1.bias", [128], StoreTensorKind.Parameter),
            ("layer2.0.downsample.1.running_mean", [128], StoreTensorKind.Buffer),
            ("layer3.0.downsample.0.weight", [256, 128, 1, 1], StoreTensorKind.Parameter),
            ("layer3.1.bn1.bias", [256], StoreTensorKind.Parameter),
            ("layer4.0.conv1.weight", [512, 256, 3, 3], StoreTensorKind.Parameter),
            ("layer4.0.downsample.0.weight", [512, 256, 1, 1], StoreTensorKind.Parameter),
            ("layer4.1.conv2.weight", [512, 512, 3, 3], StoreTensorKind.Parameter),
            ("layer4.1.bn2.running_mean", [512], StoreTensorKind.Buffer),
        };
        foreach (var (name, shape, kind) in expected)
        {
            var e = store.Find(name);
            Assert.Equal(shape, e.Shape.ToArray());
            Assert.Equal(kind, e.Kind);
        }
        Assert.False(store.Contains("layer1.0.downsample.0.weight"));
        Assert.False(store.Contains("layer2.1.downsample.0.weight"));
        Assert.False(store.Contains("fc.weight"));
    }

    [Fact]
    public void BottleneckPutsTheStrideOnTheThreeByThreeConvolution()
    {
        using var store = new ParameterStore<double>(Backend);
        var net = new ResNet<double>(store, ResNetArch.ResNet50, StemKind.ImageNet, 1.0);
        var block = net.Layers.OfType<Bottleneck<double>>().First(b => b.Name == "layer2.0");
        Assert.Equal(2, block.Stride);
        Assert.True(block.HasProjection);
        Assert.Equal([128, 256, 1, 1], store.Find("layer2.0.conv1.weight").Shape.ToArray());
        Assert.Equal([128, 128, 3, 3], store.Find("layer2.0.conv2.weight").Shape.ToArray());
        Assert.Equal([512, 128, 1, 1], store.Find("layer2.0.conv3.weight").Shape.ToArray());
        Assert.Equal([512, 256, 1, 1], store.Find("layer2.0.downsample.0.weight").Shape.ToArray());
        Assert.Equal([256, 64, 1, 1], store.Find("layer1.0.downsample.0.weight").Shape.ToArray());

        // Planned on a 9×11 map, the 1×1 conv1 keeps the size and the 3×3 conv2 halves it.
        using var arena = new ActivationArena<double>(Backend);
        var output = block.Plan(arena, new Shape(1, 256, 9, 11), InputGradient.Compute);
        Assert.Equal(new Shape(1, 512, 5, 6), output);
        Assert.Contains(arena.Slots, s => s.Name == "layer2.0.conv1.y" && s.Shape == new Shape(1, 128, 9, 11));
        Assert.Contains(arena.Slots, s => s.Name == "layer2.0.conv2.y" && s.Shape == new Shape(1, 128, 5, 6));
    }

    [Fact]
    public void WidthMultiplierScalesEveryStage()
    {
        using var store = new ParameterStore<double>(Backend);
        var net = new ResNet<double>(store, ResNetArch.ResNet18, StemKind.Cifar, 0.75);
        Assert.Equal(48, net.BaseWidth);
        Assert.Equal(384, net.FeatureDim);
        Assert.Equal([48, 3, 3, 3], store.Find("conv1.weight").Shape.ToArray());
        Assert.Equal([384, 192, 1, 1], store.Find("layer4.0.downsample.0.weight").Shape.ToArray());
        Assert.Equal(8192, ResNet<double>.FeatureDimOf(ResNetArch.ResNet50, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ResNet<double>.BaseWidthOf(0.3));
    }

    [Fact]
    public void CifarStemKeepsResolutionAndImageNetStemQuartersIt()
    {
        foreach (var (stem, expected) in new[] { (StemKind.Cifar, new Shape(3, 5, 9, 11)), (StemKind.ImageNet, new Shape(3, 5, 3, 3)) })
        {
            using var store = new ParameterStore<double>(Backend);
            var net = new ResNet<double>(store, ResNetArch.ResNet18, stem, 5.0 / 64);
            using var arena = new ActivationArena<double>(Backend);
            net.Plan(arena, new Shape(3, 3, 9, 11), InputGradient.Skip);
            Assert.Equal(expected, arena.Slots.Single(s => s.Name == "layer1.0.conv1.y").Shape);
            Assert.DoesNotContain(arena.Slots, s => s.Name == "conv1.dx");
        }
    }
}
