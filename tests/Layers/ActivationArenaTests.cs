// The activation arena's packing: gradient slots share memory only when their backward lifetimes are
// disjoint, step slots never share, every slot fits, and sharing really shrinks a ResNet's plan. (That the
// lifetimes themselves are right is what the whole-model finite-difference checks prove: a wrong lifetime
// lets one gradient overwrite another and the check fails.)
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

public class ActivationArenaTests
{
    [Fact]
    public void SlotsLiveAtTheSameTimeNeverShareAddresses()
    {
        using var store = new ParameterStore<double>(Backend);
        var net = new ResNet<double>(store, ResNetArch.ResNet50, StemKind.ImageNet, 3.0 / 64);
        var head = new ProjectionHead<double>(store, net.FeatureDim, 10, 6, 3);
        using var arena = new ActivationArena<double>(Backend);
        var h = net.Plan(arena, new Shape(6, 3, 37, 29), InputGradient.Compute);
        head.Plan(arena, h, InputGradient.Compute);
        head.InputGradientSlot!.ExtendTo(net.Layers[^1].FirstTick);
        arena.Allocate();

        var slots = arena.Slots;
        for (int i = 0; i < slots.Count; i++)
        {
            var a = slots[i];
            Assert.True(a.Offset >= 0 && a.Offset + a.Shape.Elements <= arena.Length, $"{a.Name} lies outside the arena");
            Assert.Equal(0, a.Offset % ActivationArena<double>.Alignment);
            for (int j = i + 1; j < slots.Count; j++)
            {
                var b = slots[j];
                bool sameTime = a.Lifetime == SlotLifetime.Step || b.Lifetime == SlotLifetime.Step ||
                                (a.LastReadTick <= b.WriteTick && b.LastReadTick <= a.WriteTick);
                bool sameMemory = a.Offset < b.Offset + b.Shape.Elements && b.Offset < a.Offset + a.Shape.Elements;
                Assert.False(sameTime && sameMemory, $"{a.Name} and {b.Name} are live together but overlap in memory");
            }
        }
        // Every leaf takes one tick and writes its gradient at it; readers extend lifetimes downwards only.
        Assert.All(slots.Where(s => s.Lifetime == SlotLifetime.Backward), s => Assert.InRange(s.LastReadTick, 1, s.WriteTick));
        Assert.True(arena.Length < 0.8 * arena.UnsharedLength, $"sharing saved too little: {arena.Length} of {arena.UnsharedLength}");
    }

    [Fact]
    public void ReservingAfterAllocationOrAtAnUnissuedTickFails()
    {
        using var arena = new ActivationArena<double>(Backend);
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.ReserveGradient("g", new Shape(4), Layout.RowMajor, 1));
        int tick = arena.NextTick();
        var slot = arena.ReserveGradient("g", new Shape(4), Layout.RowMajor, tick);
        Assert.Throws<InvalidOperationException>(() => slot.View);
        arena.Allocate();
        Assert.Equal(4, slot.View.Length);
        Assert.Throws<InvalidOperationException>(() => arena.Reserve("late", new Shape(2)));
        Assert.Throws<InvalidOperationException>(() => slot.ExtendTo(0));
    }
}
