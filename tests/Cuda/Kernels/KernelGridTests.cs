// Launch geometry of the hand-written kernels, checked without a GPU: the constants the launchers use match
// the #defines in kernels/*.cu (a tile or block-size change on one side only fails here, not as wrong
// results on a device), and the grid functions keep the invariants the kernels rely on for every problem
// size and SM count: NT-Xent splits cover every column tile with no empty split, per-block partial grids
// stay within the scratch reserved for them and depend on the problem size only, and grids are never empty.
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Launch;

namespace SimClr.Tests.Cuda.Kernels;

public partial class KernelGridTests
{
    private static readonly int[] SmCounts = [1, 46, 108, 132, 144];

    [GeneratedRegex(@"^\s*#define\s+(\w+)\s+(\d+)\b", RegexOptions.Multiline)]
    private static partial Regex DefinePattern();

    private static int Define(string text, string name)
    {
        foreach (Match m in DefinePattern().Matches(text))
            if (m.Groups[1].Value == name) return int.Parse(m.Groups[2].Value);
        throw new Xunit.Sdk.XunitException($"#define {name} not found");
    }

    [Fact]
    public void LauncherConstantsMatchTheKernelSources()
    {
        var common = KernelSources.Headers["common.cuh"];
        var ntxent = KernelSources.Source("ntxent");
        Assert.Equal(KernelGrids.SimilarityTile, Define(common, "ROWTILE"));
        Assert.Equal(KernelGrids.Block, Define(common, "ROWTILE_THREADS"));
        Assert.Equal(KernelGrids.NtXentDSlice, Define(ntxent, "NTX_DSLICE"));
        foreach (var module in new[] { "elementwise", "ntxent", "cosine", "lars", "syncbn" })
        {
            var source = KernelSources.Source(module);
            foreach (Match m in Regex.Matches(source, @"__launch_bounds__\((\w+)"))
            {
                var bound = m.Groups[1].Value;
                int threads = bound.All(char.IsDigit) ? int.Parse(bound) : Define(common, bound);
                Assert.True(threads == KernelGrids.Block, $"{module}.cu declares __launch_bounds__({bound}) but the launchers use {KernelGrids.Block} threads");
            }
        }
    }

    [Fact]
    public void NtXentSplitsCoverEveryColumnTileWithoutEmptySplits()
    {
        // The full op (every row) and the rows-subset mode of data parallelism (one rank's 2N/W rows of 2N).
        foreach (int sms in SmCounts)
            for (int rows = 2; rows <= 40_000; rows += rows < 300 ? 2 : 997)
                foreach (int ranks in new[] { 1, 2, 8 })
                {
                    if (rows % (2 * ranks) != 0) continue;
                    int rowCount = rows / ranks, tiles = KernelGrids.Tiles(rows);
                    var (splits, perSplit) = KernelGrids.NtXentSplits(rowCount, rows, sms);
                    Assert.InRange(splits, 1, Math.Min(tiles, KernelGrids.MaxNtXentSplits));
                    Assert.True(splits * perSplit >= tiles, $"2N={rows} over {ranks} ranks, {sms} SMs: {splits}×{perSplit} tiles miss some of {tiles}");
                    Assert.True((splits - 1) * perSplit < tiles, $"2N={rows} over {ranks} ranks, {sms} SMs: split {splits - 1} would be empty");
                }
    }

    [Fact]
    public void SyncBatchNormChunksCoverTheChannelWithoutIdleBlocks()
    {
        foreach (int sms in SmCounts)
            foreach (int channels in new[] { 1, 8, 64, 2048 })
                foreach (long perChannel in new long[] { 1, 255, 256, 257, 4096, 1L << 20, 1L << 34 })
                {
                    int chunks = CudaBackend.SyncBatchNormChunks(perChannel, channels, sms);
                    Assert.InRange(chunks, 1, KernelGrids.MaxGridY);
                    // No block of a channel is without an element; the grid-stride loop covers the rest.
                    Assert.True((chunks - 1) * (long)KernelGrids.Block < perChannel, $"{perChannel} elements, {channels} channels, {sms} SMs: {chunks} chunks leave one idle");
                    Assert.True((long)chunks * channels <= Math.Max(8L * sms + channels, channels), $"{chunks} chunks × {channels} channels overfill {sms} SMs");
                }
    }

    [Fact]
    public void PartialGridsFitTheirScratchAndDependOnTheSizeOnly()
    {
        for (int rows = 1; rows <= 100_000; rows += rows < 100 ? 1 : 331)
        {
            int blocks = KernelGrids.PartialBlocks(rows);
            Assert.InRange(blocks, 1, KernelGrids.MaxPartialBlocks);
            // Every row is visited: either one warp per row, or the cap with a grid-stride loop.
            Assert.True(blocks * KernelGrids.WarpsPerBlock >= rows || blocks == KernelGrids.MaxPartialBlocks);
        }
    }

    [Fact]
    public void GridsAreNeverEmptyAndStayWithinTheirCaps()
    {
        foreach (int sms in SmCounts)
            foreach (long n in new long[] { 0, 1, 3, 4, 1023, 1024, 1025, 1L << 20, 3L << 30 })
            {
                Assert.InRange(KernelGrids.Elementwise(n, sms), 1u, 16u * (uint)sms);
                Assert.InRange(KernelGrids.PerElement(n, sms), 1u, 16u * (uint)sms);
                Assert.InRange(KernelGrids.Rows(n, sms), 1u, 16u * (uint)sms);
                if (n > 0 && KernelGrids.Elementwise(n, sms) < 16u * (uint)sms)
                    Assert.True(KernelGrids.Elementwise(n, sms) * (long)KernelGrids.Block * 4 >= n - 3);
            }
        foreach (int sms in SmCounts)
            foreach (int segments in new[] { 1, 2, 62, 161, 1000, 65535 })
                Assert.InRange(KernelGrids.OptimizerChunks(segments, sms), 4, 64);
    }
}
