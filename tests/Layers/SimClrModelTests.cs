// The whole model: tiny ResNets (channel counts 3/6/12/24 and 2..64, 5×7 images, 3 positive pairs = 6 rows)
// with a projection head and NT-Xent, checked end to end against central finite differences of the loss for
// EVERY parameter tensor (sampled coordinates, always including the largest analytic entry so the global
// relative error is judged on the tensor's own scale) and for the input; plus BN running statistics after
// several steps against a direct computation, gradient accumulation, inference-mode features, and the
// promise that a step allocates nothing.
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

public class SimClrModelTests
{
    private static SimClrModelConfig Tiny(ResNetArch arch, StemKind stem, int baseWidth, int headLayers, int height = 5, int width = 7) => new()
    {
        Arch = arch,
        Stem = stem,
        WidthMultiplier = baseWidth / 64.0,
        ImageHeight = height,
        ImageWidth = width,
        BatchSize = 3,
        HeadHiddenDim = 7,
        HeadOutputDim = 5,
        HeadLayers = headLayers,
        Temperature = 0.5,
        Seed = 2024,
        InputGradient = InputGradient.Compute,
    };

    [Theory]
    [InlineData(ResNetArch.ResNet18, StemKind.Cifar, 3, 3, 5, 7, 5)]
    [InlineData(ResNetArch.ResNet50, StemKind.Cifar, 3, 2, 5, 7, 2)]
    [InlineData(ResNetArch.ResNet18, StemKind.ImageNet, 3, 2, 17, 19, 2)]
    public void EveryParameterAndTheInputGradientMatchFiniteDifferences(ResNetArch arch, StemKind stem, int baseWidth, int headLayers, int height, int width, int samplesPerTensor)
    {
        using var model = new SimClrModel<double>(Backend, Tiny(arch, stem, baseWidth, headLayers, height, width));
        var store = model.Parameters;
        LayerHarness.PerturbParameters(store, 77);
        var views = Tensor(Random(model.InputShape.Elements, 31), model.InputShape);
        double Loss() => Read(model.Forward(views))[0];

        store.ZeroGradients();
        Loss();
        model.Backward();
        var inputGradient = Read(model.ViewsGradient);
        var grads = store.ParameterSlots.Select(p => store.GetGradientHost(p.Name)).ToArray();

        var rng = new Random(5);
        for (int t = 0; t < grads.Length; t++)
        {
            var name = store.ParameterSlots[t].Name;
            CheckSampled(Loss, store.View(name), grads[t], SampleIndices(grads[t], samplesPerTensor, rng), name);
        }
        CheckSampled(Loss, views, inputGradient, SampleIndices(inputGradient, 24, rng), "views");
        Assert.Equal(store.ParameterSlots.Count, grads.Length);
    }

    [Fact]
    public void BackwardAddsIntoTheParameterGradients()
    {
        using var model = new SimClrModel<double>(Backend, Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2));
        var views = Tensor(Random(model.InputShape.Elements, 8), model.InputShape);
        model.Parameters.ZeroGradients();
        model.Forward(views);
        model.Backward();
        var once = Read(model.Parameters.Gradients);
        model.Forward(views);
        model.Backward();
        var twice = Read(model.Parameters.Gradients);
        Assert.Contains(once, g => g != 0);
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], twice[i], 1e-12 * Math.Max(1, Math.Abs(once[i])));
    }

    [Fact]
    public void BatchNormRunningStatisticsFollowTheDirectComputation()
    {
        using var model = new SimClrModel<double>(Backend, Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 3) with { InputGradient = InputGradient.Skip });
        var store = model.Parameters;
        int c = model.Encoder.BaseWidth, rows = model.InputShape[0], plane = 5 * 7;
        var mean = new double[c];
        var variance = Enumerable.Repeat(1.0, c).ToArray();
        var headMean = new double[7];
        var headVar = Enumerable.Repeat(1.0, 7).ToArray();
        var stem = (Conv2d<double>)model.Encoder.Layers[0];
        var headLinear = (Linear<double>)model.Head.Layers[0];
        const int steps = 4;
        for (int step = 0; step < steps; step++)
        {
            var views = Tensor(Random(model.InputShape.Elements, 100 + step, -2, 3), model.InputShape);
            model.Forward(views);
            // The stem BN normalizes conv1's output and the first head BN the first head linear's output:
            // recompute their batch statistics from those tensors directly.
            Accumulate(Read(stem.Forward(views)), rows, c, plane, mean, variance);
            Accumulate(Read(headLinear.Forward(model.Features)), rows, 7, 1, headMean, headVar);
            model.Forward(views);
            Accumulate(Read(stem.Forward(views)), rows, c, plane, mean, variance);
            Accumulate(Read(headLinear.Forward(model.Features)), rows, 7, 1, headMean, headVar);
        }
        AssertAll(mean, store.GetHost("bn1.running_mean"));
        AssertAll(variance, store.GetHost("bn1.running_var"));
        AssertAll(headMean, store.GetHost("head.1.running_mean"));
        AssertAll(headVar, store.GetHost("head.1.running_var"));
        Assert.Equal(2 * steps, store.GetCounter("bn1.num_batches_tracked"));
        Assert.Equal(2 * steps, store.GetCounter("layer4.1.bn2.num_batches_tracked"));
    }

    [Fact]
    public void EncodeFeaturesUsesRunningStatisticsRowByRowAndChangesNothing()
    {
        using var model = new SimClrModel<double>(Backend, Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2));
        var store = model.Parameters;
        for (int step = 0; step < 2; step++) model.Forward(Tensor(Random(model.InputShape.Elements, 50 + step), model.InputShape));
        var before = Read(store.Parameters).Concat(Read(store.Buffers)).ToArray();

        // 7 images: more than the planned 6 rows, so the call runs in two chunks.
        var images = Tensor(Random(7L * 3 * 5 * 7, 9), new Shape(7, 3, 5, 7));
        var features = Tensor(new double[7 * model.FeatureDim], new Shape(7, model.FeatureDim));
        model.EncodeFeatures(features, images);
        var all = Read(features);
        Assert.Equal(before, Read(store.Parameters).Concat(Read(store.Buffers)).ToArray());
        Assert.Equal(2, store.GetCounter("bn1.num_batches_tracked"));

        // In inference mode a row's features do not depend on the other rows of the batch.
        for (int i = 0; i < 7; i++)
        {
            var one = Tensor(new double[model.FeatureDim], new Shape(1, model.FeatureDim));
            model.EncodeFeatures(one, images.Rows(i, 1));
            AssertAll(Read(one), all.AsSpan(i * model.FeatureDim, model.FeatureDim).ToArray());
        }
        Assert.Contains(all, v => v != 0);
    }

    [Fact]
    public void ATrainingStepAllocatesNothing()
    {
        var counting = new CountingBackend(Backend);
        using var model = new SimClrModel<double>(counting, Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2));
        var views = Tensor(Random(model.InputShape.Elements, 4), model.InputShape);
        long before = counting.Allocations;
        Assert.True(before > 0, "the proxy should have seen the model's allocations");
        for (int step = 0; step < 2; step++)
        {
            model.Parameters.ZeroGradients();
            model.Forward(views);
            model.Backward();
        }
        Assert.Equal(before, counting.Allocations);
        Assert.True(counting.Calls > before + 100, "the steps should have gone through the counting backend");
    }

    [Fact]
    public void TheFloatModelAgreesWithTheDoubleModel()
    {
        // Same seed, same init (drawn in double, rounded to float), same views: the fp32 path the CUDA backend
        // runs must track the fp64 reference to float accuracy, in the loss and in the gradients.
        var config = Tiny(ResNetArch.ResNet18, StemKind.Cifar, 5, 3) with { InputGradient = InputGradient.Skip };
        using var reference = new SimClrModel<double>(Backend, config);
        using var single = new SimClrModel<float>(new SimClr.Kernels.Cpu.CpuBackend<float>(), config);
        var views = Random(reference.InputShape.Elements, 12);
        var floatViews = new HostStorage<float>(views.Length);
        for (int i = 0; i < views.Length; i++) floatViews.HostSpan(0, views.Length)[i] = (float)views[i];

        reference.Parameters.ZeroGradients();
        single.Parameters.ZeroGradients();
        double lossDouble = Read(reference.Forward(Tensor(views, reference.InputShape)))[0];
        float lossFloat = single.Forward(floatViews.AsTensor(single.InputShape)).Span[0];
        reference.Backward();
        single.Backward();

        Assert.Equal(lossDouble, lossFloat, 1e-4);
        foreach (var slot in reference.Parameters.ParameterSlots)
        {
            var g64 = reference.Parameters.GetGradientHost(slot.Name);
            var g32 = single.Parameters.GetGradientHost(slot.Name).Select(v => (double)v).ToArray();
            Assert.True(RelativeError(g32, g64) < 2e-3, $"{slot.Name}: float gradients differ from double by {RelativeError(g32, g64):E2}");
        }
    }

    [Fact]
    public void AModelPlannedForMoreRowsTrainsOnFewerExactlyLikeOnePlannedForThem()
    {
        var config = Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2) with { InputGradient = InputGradient.Compute };
        using var large = new SimClrModel<double>(Backend, config);
        using var exact = new SimClrModel<double>(Backend, config with { BatchSize = 2 });
        var views = Random(exact.InputShape.Elements, 61);
        large.Parameters.ZeroGradients();
        exact.Parameters.ZeroGradients();
        double a = Read(large.Forward(Tensor(views, exact.InputShape)))[0];
        double b = Read(exact.Forward(Tensor(views, exact.InputShape)))[0];
        large.Backward();
        exact.Backward();
        Assert.Equal(b, a, 1e-12);
        AssertAll(Read(exact.Parameters.Gradients), Read(large.Parameters.Gradients));
        AssertAll(Read(exact.Parameters.Buffers), Read(large.Parameters.Buffers));
        AssertAll(Read(exact.ViewsGradient), Read(large.ViewsGradient));
    }

    [Fact]
    public void ConfigurationErrorsAreClear()
    {
        Assert.Throws<ArgumentException>(() => Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 4).Validate());
        Assert.Throws<ArgumentException>(() => (Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2) with { Temperature = 0 }).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => (Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2) with { WidthMultiplier = 0.01 }).Validate());
        using var model = new SimClrModel<double>(Backend, Tiny(ResNetArch.ResNet18, StemKind.Cifar, 3, 2) with { InputGradient = InputGradient.Skip });
        var wrong = Tensor(new double[6 * 3 * 7 * 5], new Shape(6, 3, 7, 5));
        var e = Assert.Throws<ArgumentException>(() => model.Forward(wrong));
        Assert.Contains("planned", e.Message);
        Assert.Throws<InvalidOperationException>(() => model.ViewsGradient);
    }

    private static void Accumulate(double[] x, int rows, int channels, int plane, double[] mean, double[] variance)
    {
        for (int ch = 0; ch < channels; ch++)
        {
            double sum = 0, sq = 0;
            int count = rows * plane;
            for (int n = 0; n < rows; n++) for (int i = 0; i < plane; i++) sum += x[(n * channels + ch) * plane + i];
            double m = sum / count;
            for (int n = 0; n < rows; n++) for (int i = 0; i < plane; i++) { double d = x[(n * channels + ch) * plane + i] - m; sq += d * d; }
            mean[ch] = 0.9 * mean[ch] + 0.1 * m;
            variance[ch] = 0.9 * variance[ch] + 0.1 * sq / (count - 1);
        }
    }

    private static void AssertAll(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-12 * Math.Max(1, Math.Abs(expected[i])));
    }
}
