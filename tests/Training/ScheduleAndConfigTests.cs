using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Optim;

namespace SimClr.Tests.Training;

public class ScheduleAndConfigTests
{
    [Fact]
    public void WarmupRisesLinearlyThenCosineDecaysToZero()
    {
        var s = new LearningRateSchedule(peak: 2.0, warmupEpochs: 2, epochs: 10, stepsPerEpoch: 5);
        Assert.Equal(10, s.WarmupSteps);
        Assert.Equal(50, s.TotalSteps);
        for (int i = 0; i < 10; i++) Assert.Equal(2.0 * (i + 1) / 10, s.At(i), 12);
        Assert.Equal(2.0, s.At(10), 12);
        // Halfway through the decay the cosine is at half the peak.
        Assert.Equal(1.0, s.At(30), 12);
        Assert.Equal(2.0 * 0.5 * (1 + Math.Cos(Math.PI * 37 / 40)), s.At(47), 12);
        Assert.True(s.At(49) > 0 && s.At(49) < 0.01);
        for (int i = 11; i < 50; i++) Assert.True(s.At(i) < s.At(i - 1));
    }

    [Fact]
    public void WarmupLongerThanTheRunIsClippedToATenth()
    {
        var s = new LearningRateSchedule(1.0, warmupEpochs: 10, epochs: 3, stepsPerEpoch: 20);
        Assert.True(s.WarmupClipped);
        Assert.Equal(6, s.WarmupSteps);
        Assert.Equal(1.0, s.At(5), 12);
        var tiny = new LearningRateSchedule(1.0, 10, 1, 3);
        Assert.Equal(1, tiny.WarmupSteps);
    }

    [Theory]
    [InlineData(LrScaling.Linear, 512, 0.3 * 512 / 256)]
    [InlineData(LrScaling.Sqrt, 1024, 0.075 * 32)]
    public void PeakLearningRateFollowsThePaperScaling(LrScaling scaling, int batch, double expected)
    {
        var c = new RunConfig { LrScaling = scaling, BatchSize = batch }.Resolve(32);
        Assert.Equal(expected, c.PeakLearningRate(), 12);
    }

    [Fact]
    public void AutoChoicesFollowTheImageSize()
    {
        var small = new RunConfig().Resolve(32);
        Assert.Equal(0.5, small.Temperature);
        Assert.Equal(AugmentPreset.Cifar, small.Augment);
        Assert.Equal(StemChoice.Cifar, small.Stem);
        Assert.Equal(0f, small.AugmentSpec().BlurProbability);
        Assert.Equal(0.4f, small.AugmentSpec().Brightness, 6);
        var large = new RunConfig().Resolve(96);
        Assert.Equal(0.1, large.Temperature);
        Assert.Equal(AugmentPreset.Paper, large.Augment);
        Assert.Equal(StemChoice.ImageNet, large.Stem);
        Assert.Equal(0.5f, large.AugmentSpec().BlurProbability);
        var overridden = new RunConfig { Temperature = 0.2, AugmentOverrides = new AugmentOverrides { ColorStrength = 1.0, Blur = 0.25 } }.Resolve(32);
        Assert.Equal(0.2, overridden.Temperature);
        Assert.Equal(0.8f, overridden.AugmentSpec().Brightness, 6);
        Assert.Equal(0.25f, overridden.AugmentSpec().BlurProbability);
    }

    [Fact]
    public void ConfigRoundTripsThroughJson()
    {
        var c = new RunConfig { Epochs = 7, Seed = 99, Temperature = 0.3, Width = 0.25, AugmentOverrides = new AugmentOverrides { Hue = 0.05 } }.Resolve(32);
        Assert.Equal(c, RunConfig.FromJson(c.ToJson(), "test") with { AugmentOverrides = c.AugmentOverrides });
        Assert.Equal(0.05, RunConfig.FromJson(c.ToJson(), "test").AugmentOverrides.Hue);
        Assert.Throws<UserError>(() => RunConfig.FromJson("{not json", "x.safetensors"));
    }
}
