using SimClr.Kernels;

namespace SimClr.Tests.Kernels;

public class PhiloxTests
{
    // Known-answer vectors from Random123's kat_vectors for philox4x32_10.
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void MatchesKnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint e0, uint e1, uint e2, uint e3)
    {
        Assert.Equal(new Philox4(e0, e1, e2, e3), Philox.Block(c0, c1, c2, c3, k0, k1));
    }

    [Fact]
    public void PermutationIsAPermutationAndDependsOnSeed()
    {
        var a = new PhiloxStream(7).Permutation(1000);
        var b = new PhiloxStream(8).Permutation(1000);
        Assert.Equal(Enumerable.Range(0, 1000), a.Order());
        Assert.NotEqual(a, b);
        Assert.Equal(a, new PhiloxStream(7).Permutation(1000));
    }

    [Fact]
    public void UniformFloatCoversTheUnitIntervalEvenly()
    {
        var s = new PhiloxStream(1);
        var bins = new int[10];
        for (int i = 0; i < 100_000; i++) bins[(int)(Philox.ToUniformFloat(s.NextUInt()) * 10)]++;
        Assert.All(bins, c => Assert.InRange(c, 9_500, 10_500));
    }
}
