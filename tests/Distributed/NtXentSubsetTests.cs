// The rows-subset mode of the NT-Xent op on the CPU twin, which is what data parallelism computes on each rank.
// The global layout after the all-gather is rank-major: rank r contributes its rows [view 0 of its b samples;
// view 1 of the same b], so the gathered z is W blocks of 2b rows and row i's positive is i ± b inside its block.
// These tests prove that layout right: every gathered row's positive is the other view of the same sample; the
// loss shares of the W ranks sum to the single-process loss of the same global batch (whose layout is [view 0 of
// all B; view 1 of all B]); each rank's dz rows are the single-process dz of its samples; and, in double, each
// rank's dz is the finite-difference gradient of the WHOLE loss (every rank's share) with respect to its own rows.
using SimClr.Kernels;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Distributed;

public class NtXentSubsetTests
{
    /// <summary>The single-process row of rank r's local row l (b pairs per rank, B = W·b): view v = l / b of
    /// sample r·b + l mod b, which one process keeps at v·B + that sample.</summary>
    internal static int SingleProcessRow(int rank, int local, int pairsPerRank, int ranks)
    {
        int view = local / pairsPerRank, sample = rank * pairsPerRank + local % pairsPerRank;
        return view * pairsPerRank * ranks + sample;
    }

    /// <summary>The rank-major gathered z of a single-process z [2B, D].</summary>
    private static double[] Gathered(double[] single, int ranks, int pairsPerRank, int dim)
    {
        var g = new double[single.Length];
        for (int r = 0; r < ranks; r++)
            for (int l = 0; l < 2 * pairsPerRank; l++)
                Array.Copy(single, SingleProcessRow(r, l, pairsPerRank, ranks) * dim, g, (r * 2 * pairsPerRank + l) * dim, dim);
        return g;
    }

    private static NtXentShape RankShape(int ranks, int pairsPerRank, int dim, double tau, int rank) =>
        new(2 * ranks * pairsPerRank, dim, tau) { RowStart = rank * 2 * pairsPerRank, RowCount = 2 * pairsPerRank, PairBlock = pairsPerRank };

    [Theory]
    [InlineData(2, 3)]
    [InlineData(4, 1)]
    [InlineData(3, 2)]
    public void GatheredPositivesAreTheOtherViewOfTheSameSample(int ranks, int pairsPerRank)
    {
        var shape = RankShape(ranks, pairsPerRank, 1, 0.5, 0);
        int pairs = ranks * pairsPerRank;
        for (int r = 0; r < ranks; r++)
            for (int l = 0; l < 2 * pairsPerRank; l++)
            {
                int g = r * 2 * pairsPerRank + l, p = shape.PositiveOf(g);
                int single = SingleProcessRow(r, l, pairsPerRank, ranks);
                int pr = p / (2 * pairsPerRank), pl = p % (2 * pairsPerRank);
                int singlePositive = SingleProcessRow(pr, pl, pairsPerRank, ranks);
                Assert.Equal(r, pr); // the pair never leaves its rank's block
                Assert.Equal(single % pairs, singlePositive % pairs); // same sample
                Assert.NotEqual(single / pairs, singlePositive / pairs); // other view
            }
        // One block is the single-process rule (i + N) mod 2N.
        var one = new NtXentShape(10, 1, 0.5);
        for (int i = 0; i < 10; i++) Assert.Equal((i + 5) % 10, one.PositiveOf(i));
    }

    [Theory]
    [InlineData(2, 3, 5, 0.5)]
    [InlineData(4, 2, 7, 0.2)]
    public void RankSharesEqualTheSingleProcessLossAndGradient(int ranks, int pairsPerRank, int dim, double tau)
    {
        int rows = 2 * ranks * pairsPerRank;
        var single = Random(rows * dim, 11);
        var loss = Zeros(1); var lse = Zeros(rows); var norms = Zeros(rows); var dz = Zeros(rows * dim);
        var full = new NtXentShape(rows, dim, tau);
        Backend.NtXentForward(loss, lse, norms, Tensor(single), full);
        Backend.NtXentBackward(dz, Tensor(single), lse, norms, full, lossGrad: 0.7);

        var z = Tensor(Gathered(single, ranks, pairsPerRank, dim));
        var gatheredLse = Filled(rows, double.NaN); var gatheredNorms = Zeros(rows);
        double total = 0;
        for (int r = 0; r < ranks; r++)
        {
            var share = Filled(1, double.NaN);
            Backend.NtXentForward(share, gatheredLse, gatheredNorms, z, RankShape(ranks, pairsPerRank, dim, tau, r));
            total += share.Span[0];
        }
        Assert.Equal(loss.Span[0], total, 12);
        for (int r = 0; r < ranks; r++)
        {
            var own = Filled(2 * pairsPerRank * dim, double.NaN);
            Backend.NtXentBackward(own, z, gatheredLse, gatheredNorms, RankShape(ranks, pairsPerRank, dim, tau, r), lossGrad: 0.7);
            for (int l = 0; l < 2 * pairsPerRank; l++)
            {
                int s = SingleProcessRow(r, l, pairsPerRank, ranks);
                Assert.Equal(lse.Span[s], gatheredLse.Span[r * 2 * pairsPerRank + l], 12);
                AssertClose(own.Span.Slice(l * dim, dim), dz.Span.Slice(s * dim, dim), $"rank {r} row {l} dz", 1e-12);
            }
        }
    }

    [Fact]
    public void RankGradientIsTheWholeLossDerivativeByFiniteDifferences()
    {
        const int ranks = 3, pairsPerRank = 2, dim = 4;
        const double tau = 0.3;
        int rows = 2 * ranks * pairsPerRank;
        var z = Tensor(Random(rows * dim, 12));
        var lse = Zeros(rows); var norms = Zeros(rows); var share = Zeros(1);
        double WholeLoss()
        {
            double total = 0;
            for (int r = 0; r < ranks; r++)
            {
                Backend.NtXentForward(share, lse, norms, z, RankShape(ranks, pairsPerRank, dim, tau, r));
                total += share.Span[0];
            }
            return total;
        }
        WholeLoss();
        var numeric = Numeric(WholeLoss, z);
        for (int r = 0; r < ranks; r++)
        {
            var own = Filled(2 * pairsPerRank * dim, double.NaN);
            Backend.NtXentBackward(own, z, lse, norms, RankShape(ranks, pairsPerRank, dim, tau, r));
            int first = r * 2 * pairsPerRank * dim;
            AssertClose(Read(own), numeric.AsSpan(first, 2 * pairsPerRank * dim), $"rank {r} dz (other ranks' rows included)");
        }
    }

    [Fact]
    public void SubsetShapesAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new NtXentShape(12, 2, 0.5) { PairBlock = 4 }.Validate());
        Assert.Throws<ArgumentException>(() => new NtXentShape(12, 2, 0.5) { RowStart = 8, RowCount = 6 }.Validate());
        Assert.Throws<ArgumentException>(() => new NtXentShape(12, 2, 0.5) { RowStart = -2, RowCount = 2 }.Validate());
        new NtXentShape(12, 2, 0.5) { RowStart = 6, RowCount = 6, PairBlock = 3 }.Validate();
        var e = Assert.Throws<ArgumentException>(() => Backend.NtXentBackward(Zeros(12 * 2), Zeros(12 * 2), Zeros(12), Zeros(12),
            new NtXentShape(12, 2, 0.5) { RowStart = 6, RowCount = 6, PairBlock = 3 }));
        Assert.Contains("dz", e.Message);
    }
}
