// Finite-difference checks (double, central differences, global relative error ≤ 1e-6) of every layer's
// Backward: input gradient and every parameter gradient, at odd sizes (batch 3, 5×7 images, channel counts
// that are not powers of two).
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Layers.LayerHarness;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

public class LayerGradientTests
{
    private static readonly Shape Image = new(3, 5, 5, 7);

    [Theory]
    [InlineData(3, 1, 1)]
    [InlineData(1, 2, 0)]
    [InlineData(7, 2, 3)]
    public void Conv2d(int kernel, int stride, int pad) =>
        CheckGradients(s => new Conv2d<double>(s, "conv", 5, 6, kernel, stride, pad), Image);

    [Fact]
    public void BatchNorm2d() => CheckGradients(s => new BatchNorm2d<double>(s, "bn", 5), Image, inputScale: 2);

    [Fact]
    public void BatchNorm1d() => CheckGradients(s => new BatchNorm1d<double>(s, "bn", 7), new Shape(5, 7), inputScale: 2);

    [Fact]
    public void Relu() => CheckGradients(_ => new Relu<double>(Backend, "relu"), Image);

    [Fact]
    public void MaxPool2d() => CheckGradients(_ => new MaxPool2d<double>(Backend, "pool"), Image);

    [Fact]
    public void GlobalAvgPool() => CheckGradients(_ => new GlobalAvgPool<double>(Backend, "gap"), Image);

    [Theory]
    [InlineData(LinearBias.Learned)]
    [InlineData(LinearBias.None)]
    public void Linear(LinearBias bias) => CheckGradients(s => new Linear<double>(s, "fc", 7, 5, bias), new Shape(3, 7));

    [Fact]
    public void BasicBlockWithIdentityShortcut() =>
        CheckGradients(s => IsIdentity(new BasicBlock<double>(s, "layer1.0", 5, 5, 1), expected: true), Image);

    [Theory]
    [InlineData(5, 6, 1)]
    [InlineData(5, 5, 2)]
    [InlineData(5, 6, 2)]
    public void BasicBlockWithProjectionShortcut(int inChannels, int planes, int stride) =>
        CheckGradients(s => IsIdentity(new BasicBlock<double>(s, "layer2.0", inChannels, planes, stride), expected: false), Image);

    [Theory]
    [InlineData(5, 3, 1)]
    [InlineData(5, 3, 2)]
    [InlineData(12, 3, 1)]
    public void Bottleneck(int inChannels, int planes, int stride) =>
        CheckGradients(s => IsIdentity(new Bottleneck<double>(s, "layer3.0", inChannels, planes, stride), expected: inChannels == 4 * planes && stride == 1),
            new Shape(3, inChannels, 5, 7));

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void ProjectionHead(int layers) => CheckGradients(s => new ProjectionHead<double>(s, 6, 5, 3, layers), new Shape(6, 6));

    [Fact]
    public void NtXentLoss()
    {
        using var arena = new ActivationArena<double>(Backend);
        var loss = new NtXentLoss<double>(Backend, 0.3);
        var shape = new Shape(6, 5);
        loss.Plan(arena, shape);
        arena.Allocate();
        var z = Tensor(Random(shape.Elements, 5), shape);
        double Loss() => Read(loss.Forward(z))[0];
        Loss();
        var dz = Read(loss.Backward(0.7));
        var numeric = Numeric(Loss, z);
        for (int i = 0; i < numeric.Length; i++) numeric[i] *= 0.7;
        AssertClose(dz, numeric, "NT-Xent dz");
    }

    [Fact]
    public void BatchNormInferenceUsesRunningStatisticsAndRefusesBackward()
    {
        using var store = new ParameterStore<double>(Backend);
        var bn = new BatchNorm1d<double>(store, "bn", 3);
        store.Allocate(1);
        store.SetHost("bn.running_mean", [0.5, -1, 2]);
        store.SetHost("bn.running_var", [4, 0.25, 1]);
        store.SetHost("bn.weight", [2, 3, -1]);
        store.SetHost("bn.bias", [0.1, 0.2, 0.3]);
        using var arena = new ActivationArena<double>(Backend);
        bn.Plan(arena, new Shape(2, 3), InputGradient.Compute);
        arena.Allocate();
        bn.SetMode(NormMode.Inference);
        var y = Read(bn.Forward(Tensor([1.5, 0, 3, -0.5, -2, 2], new Shape(2, 3))));
        double[] expected =
        [
            2 * (1.5 - 0.5) / Math.Sqrt(4 + 1e-5) + 0.1, 3 * (0 + 1) / Math.Sqrt(0.25 + 1e-5) + 0.2, -(3 - 2) / Math.Sqrt(1 + 1e-5) + 0.3,
            2 * (-0.5 - 0.5) / Math.Sqrt(4 + 1e-5) + 0.1, 3 * (-2 + 1) / Math.Sqrt(0.25 + 1e-5) + 0.2, -(2 - 2) / Math.Sqrt(1 + 1e-5) + 0.3,
        ];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], y[i], 12);
        Assert.Equal([0.5, -1, 2], store.GetHost("bn.running_mean"));
        Assert.Equal(0, store.GetCounter("bn.num_batches_tracked"));
        Assert.Throws<InvalidOperationException>(() => bn.Backward(Tensor(new double[6], new Shape(2, 3))));
    }

    private static ResidualBlock<double> IsIdentity(ResidualBlock<double> block, bool expected)
    {
        Assert.Equal(!expected, block.HasProjection);
        return block;
    }
}
