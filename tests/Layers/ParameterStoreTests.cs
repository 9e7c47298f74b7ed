// The parameter store: one flat layout shared by values, gradients and optimizer state; segment flags as
// SimCLR wants them; torchvision initialization (deterministic in the seed, Kaiming fan_out std checked
// statistically, nn.Linear's uniform bound, BN constants); host get/set and counters.
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

public class ParameterStoreTests
{
    private static ParameterStore<double> SmallModel(ulong seed)
    {
        var store = new ParameterStore<double>(Backend);
        _ = new ResNet<double>(store, ResNetArch.ResNet18, StemKind.Cifar, 3.0 / 64);
        _ = new ProjectionHead<double>(store, 24, 10, 5, 3);
        store.Allocate(seed);
        return store;
    }

    [Fact]
    public void SegmentsCoverEveryParameterWithSimClrExclusions()
    {
        using var store = SmallModel(3);
        var segments = store.HostSegments.ToArray();
        var device = new ParamSegment[store.SegmentCount];
        Backend.Download<ParamSegment>(device, store.Segments);
        Assert.Equal(segments, device);
        Assert.Equal(store.ParameterCount, segments.Sum(s => s.Length));
        for (int i = 0; i < store.SegmentCount; i++)
        {
            var e = store.ParameterSlots[i].Entry;
            Assert.Equal(e.Offset, segments[i].Offset);
            Assert.Equal(e.Elements, segments[i].Length);
            Assert.Equal(0, e.Offset % ParameterStore<double>.Alignment);
            if (i > 0) Assert.True(segments[i].Offset >= segments[i - 1].Offset + segments[i - 1].Length, "segments overlap");
            bool excluded = e.Name.EndsWith(".bias", StringComparison.Ordinal) || e.Shape.Rank == 1;
            Assert.Equal(excluded ? SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation : SegmentFlags.None, segments[i].Flags);
        }
        Assert.Equal(SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation, store.Find("head.6.bias").Flags);
        Assert.Equal(SegmentFlags.None, store.Find("head.3.weight").Flags);
        Assert.False(store.Contains("head.0.bias"));
        Assert.Equal(SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation, store.Find("head.4.weight").Flags);
    }

    [Fact]
    public void GradientsAndStateShareTheParameterLayout()
    {
        using var store = SmallModel(3);
        Assert.Equal(store.FlatLength, store.Gradients.Length);
        using var state = store.AllocateStateBuffer();
        Assert.Equal(store.FlatLength, state.Length);
        var view = store.StateView(state, "layer3.0.conv2.weight");
        Assert.Equal(store.Find("layer3.0.conv2.weight").Offset, view.Offset);
        Assert.Equal(store.Find("layer3.0.conv2.weight").Shape, view.Shape);

        store.Gradients.Span.Fill(2.5);
        store.ZeroGradients();
        Assert.All(Read(store.Gradients), g => Assert.Equal(0.0, g));
        Assert.Equal(store.GradientView("bn1.bias").Offset, store.View("bn1.bias").Offset);
    }

    [Fact]
    public void InitializationIsDeterministicInTheSeed()
    {
        using var a = SmallModel(42);
        using var b = SmallModel(42);
        using var c = SmallModel(43);
        Assert.Equal(Read(a.Parameters), Read(b.Parameters));
        Assert.NotEqual(Read(a.Parameters), Read(c.Parameters));
        a.SetHost("layer2.0.conv1.weight", new double[a.Find("layer2.0.conv1.weight").Elements]);
        a.Initialize(42);
        Assert.Equal(Read(a.Parameters), Read(b.Parameters));
    }

    [Fact]
    public void KaimingNormalFanOutHasTheRightStandardDeviation()
    {
        using var store = new ParameterStore<double>(Backend);
        _ = new Conv2d<double>(store, "conv", 37, 50, 3);
        store.Allocate(7);
        var w = store.GetHost("conv.weight");
        double mean = w.Average();
        double std = Math.Sqrt(w.Sum(v => (v - mean) * (v - mean)) / (w.Length - 1));
        double expected = Math.Sqrt(2.0 / (50 * 3 * 3));
        // n = 16650 draws: the sample std has relative standard error 1/√(2n) ≈ 0.55 %, the mean σ/√n.
        Assert.InRange(std / expected, 0.97, 1.03);
        Assert.InRange(mean, -5 * expected / Math.Sqrt(w.Length), 5 * expected / Math.Sqrt(w.Length));
        // fan_in (37·9) would give a std 16 % larger: the check tells the two modes apart.
        Assert.True(Math.Abs(std / Math.Sqrt(2.0 / (37 * 9)) - 1) > 0.1);
    }

    [Fact]
    public void LinearIsUniformInTheFanInBoundAndBatchNormStartsAtIdentity()
    {
        using var store = new ParameterStore<double>(Backend);
        _ = new Linear<double>(store, "fc", 300, 40, LinearBias.Learned);
        _ = new BatchNorm1d<double>(store, "bn", 40);
        store.Allocate(9);
        double bound = 1 / Math.Sqrt(300);
        var w = store.GetHost("fc.weight");
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.InRange(w.Max(), 0.99 * bound, bound);
        Assert.InRange(w.Min(), -bound, -0.99 * bound);
        // Uniform(−b, b) has variance b²/3; 12000 draws give a relative standard error of about 0.8 % on it.
        Assert.InRange(w.Average(v => v * v) / (bound * bound / 3), 0.96, 1.04);
        Assert.All(store.GetHost("fc.bias"), v => Assert.InRange(v, -bound, bound));
        Assert.All(store.GetHost("bn.weight"), v => Assert.Equal(1.0, v));
        Assert.All(store.GetHost("bn.bias"), v => Assert.Equal(0.0, v));
        Assert.All(store.GetHost("bn.running_mean"), v => Assert.Equal(0.0, v));
        Assert.All(store.GetHost("bn.running_var"), v => Assert.Equal(1.0, v));
    }

    [Fact]
    public void RegistrationAndAccessErrorsAreClear()
    {
        using var store = new ParameterStore<double>(Backend);
        var conv = new Conv2d<double>(store, "conv", 3, 5, 3);
        Assert.Throws<ArgumentException>(() => store.AddParameter("conv.weight", new Shape(2), ParamInit.Zeros));
        var early = Assert.Throws<InvalidOperationException>(() => conv.Weight.Value);
        Assert.Contains("conv.weight", early.Message);
        store.Allocate(1);
        Assert.Throws<InvalidOperationException>(() => store.AddParameter("late", new Shape(2), ParamInit.Zeros));
        Assert.Throws<KeyNotFoundException>(() => store.GetHost("conv.bias"));
        Assert.Throws<ArgumentException>(() => store.SetHost("conv.weight", new double[3]));
        store.SetHost("conv.weight", Enumerable.Range(0, 135).Select(i => (double)i).ToArray());
        Assert.Equal(134.0, store.GetHost("conv.weight")[134]);
        Assert.Equal(134.0, conv.Weight.Value.Span[134]);
    }
}
