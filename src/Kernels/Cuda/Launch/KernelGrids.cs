// Grid sizing of the hand-written kernels, as pure functions of the problem size and the device's SM count,
// so that the launch geometry is testable without a GPU. Kernels that write one partial per block get grids
// that depend on the problem size only (MaxPartialBlocks), which keeps their reductions bitwise reproducible.
namespace SimClr.Kernels.Cuda.Launch;

internal static class KernelGrids
{
    /// <summary>Threads per block of every kernel in kernels/*.cu (their __launch_bounds__).</summary>
    public const int Block = 256;
    public const int WarpsPerBlock = Block / 32;
    /// <summary>Row-wise kernels that write one partial per block use at most this many blocks.</summary>
    public const int MaxPartialBlocks = 1024;
    /// <summary>The similarity tile edge of ntxent.cu and cosine.cu (ROWTILE).</summary>
    public const int SimilarityTile = 64;
    /// <summary>The D slice one block of ntxent_bwd_tiles accumulates (NTX_DSLICE).</summary>
    public const int NtXentDSlice = 128;
    public const int MaxNtXentSplits = 16;
    public const int MaxGridY = 65535;

    public static int Tiles(long count) => checked((int)((count + SimilarityTile - 1) / SimilarityTile));

    /// <summary>Blocks for a grid-stride element-wise loop over n floats moved as float4: enough to cover n
    /// once, capped at 16 blocks per SM (the loop strides over the rest).</summary>
    public static uint Elementwise(long n, int multiprocessors) =>
        (uint)Math.Min(Math.Max(1, (n / 4 + Block - 1) / Block), 16L * multiprocessors);

    /// <summary>Blocks for a grid-stride loop with one thread per element.</summary>
    public static uint PerElement(long n, int multiprocessors) =>
        (uint)Math.Min(Math.Max(1, (n + Block - 1) / Block), 16L * multiprocessors);

    /// <summary>Blocks for one warp per row over a grid-stride loop.</summary>
    public static uint Rows(long rows, int multiprocessors) =>
        (uint)Math.Min(Math.Max(1, (rows + WarpsPerBlock - 1) / WarpsPerBlock), 16L * multiprocessors);

    /// <summary>Blocks for one warp per row when each block writes a partial: a function of the row count only.</summary>
    public static int PartialBlocks(int rows) => Math.Clamp((rows + WarpsPerBlock - 1) / WarpsPerBlock, 1, MaxPartialBlocks);

    /// <summary>The column split of the NT-Xent forward over <paramref name="rowCount"/> rows (a subset, in data
    /// parallelism) against <paramref name="rows"/> columns: enough (row block, split) blocks to fill the GPU about
    /// four times over (a small 2N has few row blocks), at most one split per column tile and never an empty
    /// split. Returns the split count and the column tiles each split covers.</summary>
    public static (int Splits, int TilesPerSplit) NtXentSplits(int rowCount, int rows, int multiprocessors)
    {
        int rowTiles = Tiles(rowCount), tiles = Tiles(rows);
        int wanted = Math.Clamp((4 * multiprocessors + rowTiles - 1) / rowTiles, 1, Math.Min(tiles, MaxNtXentSplits));
        int tilesPerSplit = (tiles + wanted - 1) / wanted;
        return ((tiles + tilesPerSplit - 1) / tilesPerSplit, tilesPerSplit);
    }

    /// <summary>Shared memory a block may use without opting in (static and dynamic together).</summary>
    public const int DefaultSharedBytes = 48 * 1024;

    /// <summary>Whether a launch with <paramref name="dynamicBytes"/> of dynamic shared memory, on a kernel with
    /// <paramref name="staticBytes"/> of static shared memory, must first raise the kernel's dynamic limit
    /// (cuFuncSetAttribute): the 48 KiB default and the device's opt-in ceiling both bound static + dynamic,
    /// not the dynamic part alone. Refusal says why the launch cannot fit at all, else null.</summary>
    public static (bool OptIn, string? Refusal) DynamicSharedMemory(int staticBytes, int dynamicBytes, int optInLimit)
    {
        long total = (long)staticBytes + dynamicBytes;
        if (total > optInLimit)
            return (false, $"needs {dynamicBytes} bytes of dynamic shared memory besides its {staticBytes} static bytes, more than the device's {optInLimit} per block");
        return (total > DefaultSharedBytes, null);
    }

    /// <summary>Blocks per segment of the multi-tensor optimizer kernels (grid = chunks × segments; a segment's
    /// chunks stride over it): about eight blocks per SM in total, at least four per segment so that the
    /// largest tensor does not sit on a single SM, at most 64.</summary>
    public static int OptimizerChunks(int segments, int multiprocessors) =>
        Math.Clamp((8 * multiprocessors + segments - 1) / segments, 4, 64);
}
