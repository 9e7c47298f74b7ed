// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator, implemented bit-identically here and in kernels/common.cuh. Every random decision in the
// framework is a pure function of (key, counter), which is what lets CPU and GPU augmentations agree,
// runs reproduce, and resumed runs continue exactly.
using System.Runtime.CompilerServices;

namespace SimClr.Kernels;

public readonly record struct Philox4(uint X, uint Y, uint Z, uint W);

public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>One Philox4x32-10 block for counter (c0..c3) under key (k0, k1).</summary>
    public static Philox4 Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
        }
        return new Philox4(c0, c1, c2, c3);
    }

    /// <summary>The block for a 64-bit seed and a 128-bit counter given as four words.</summary>
    public static Philox4 Block(ulong seed, uint c0, uint c1, uint c2, uint c3) =>
        Block(c0, c1, c2, c3, (uint)seed, (uint)(seed >> 32));

    /// <summary>Uniform in [0, 1) with 24 random bits: exact in float and identical on GPU.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToUniformFloat(uint x) => (x >> 8) * (1.0f / 16777216.0f);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double ToUniformDouble(uint hi, uint lo) => ((((ulong)hi << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

/// <summary>A sequential stream over Philox blocks: key = seed, counter = (index, stream, 0, 0).
/// Used where a plain sequence suffices (initialization, permutations); cheap to recreate at any position.</summary>
public sealed class PhiloxStream
{
    private readonly ulong _seed;
    private readonly uint _stream;
    private ulong _block;
    private Philox4 _cur;
    private int _used = 4;

    public PhiloxStream(ulong seed, uint stream = 0)
    {
        _seed = seed;
        _stream = stream;
    }

    public uint NextUInt()
    {
        if (_used == 4)
        {
            _cur = Philox.Block(_seed, (uint)_block, (uint)(_block >> 32), _stream, 0);
            _block++;
            _used = 0;
        }
        return _used++ switch { 0 => _cur.X, 1 => _cur.Y, 2 => _cur.Z, _ => _cur.W };
    }

    public double NextDouble() => Philox.ToUniformDouble(NextUInt(), NextUInt());

    /// <summary>Uniform integer in [0, bound) without modulo bias (rejection on the top range).</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        uint limit = uint.MaxValue - uint.MaxValue % (uint)bound;
        uint x;
        do x = NextUInt(); while (x >= limit);
        return (int)(x % (uint)bound);
    }

    /// <summary>Standard normal by Box–Muller on two doubles.</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
