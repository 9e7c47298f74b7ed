// The one GEMM routine every dense and convolution op of the CPU backend reduces to: row-major
// C[M,N] = alpha·op(A)·op(B) + beta·C with leading dimensions. As in BLAS, beta = 0 means C is not
// read, so garbage (even NaN) in C is overwritten.
//
// The fast path is the GotoBLAS/BLIS scheme: op(B) is packed once into NR-wide column panels shared by
// all threads; each tile (MC rows × a chunk of column panels) then walks K in KC-deep slices, packing its
// slice of alpha·op(A) into MR-tall row panels, and an MR×NR register-blocked micro-kernel of fused
// multiply-adds sweeps the tile. Packing absorbs the transposes and zero-pads the edges, so the
// micro-kernel never branches. With AVX-512 the micro-kernel is 8 rows × 2 vectors (16 accumulators in zmm registers), otherwise
// 6 rows × 2 Vector256 (12 accumulators in the 16 ymm registers); T is float or double through
// Vector512<T>/Vector256<T>, with the FMA picked by typeof(T) tests that the JIT folds away.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SimClr.Kernels.Cpu;

/// <summary>Whether a GEMM may spread over threads (no when the caller already runs one per thread).</summary>
internal enum GemmThreading { Serial, Parallel }

/// <summary>Whether the micro-kernel overwrites its C tile or adds to it.</summary>
internal enum TileStore { Overwrite, Accumulate }

internal static unsafe class CpuGemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static readonly bool Wide = Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double));
    private static readonly bool Narrow = !Wide && Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported && (typeof(T) == typeof(float) || typeof(T) == typeof(double));

    /// <summary>Rows of the register tile.</summary>
    internal static readonly int Mr = Wide ? 8 : 6;
    /// <summary>Columns of the register tile: two vectors.</summary>
    internal static readonly int Nr = Wide ? 2 * Vector512<T>.Count : Narrow ? 2 * Vector256<T>.Count : 1;
    /// <summary>Depth of one packed slice: a KC×NR panel of B (32 KiB for float on AVX-512) stays in L1.</summary>
    private const int Kc = 256;
    /// <summary>Rows per tile: the MC×KC block of A (128 KiB for float) stays in L2.</summary>
    private static readonly int Mc = 16 * Mr;
    /// <summary>Below this many multiply-adds packing costs more than it saves.</summary>
    private const long SmallWork = 16 * 16 * 16;
    /// <summary>Below this many multiply-adds (about 10 µs of one core) handing out tiles to threads costs more than it saves.</summary>
    private const long ParallelWork = 1L << 18;

    /// <summary>C = alpha·op(A)·op(B) + beta·C. op(A)(i,p) is a[i·lda+p], or a[p·lda+i] when transposed;
    /// op(B)(p,j) is b[p·ldb+j], or b[j·ldb+p] when transposed.</summary>
    public static void Run(int m, int n, int k, T alpha, T* a, int lda, Transpose transA, T* b, int ldb, Transpose transB,
        T beta, T* c, int ldc, GemmThreading threading)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == T.Zero)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        if (!(Wide || Narrow) || (long)m * n * k < SmallWork)
        {
            Direct(m, n, k, alpha, a, lda, transA, b, ldb, transB, beta, c, ldc);
            return;
        }
        Packed(m, n, k, alpha, a, lda, transA, new MatrixPanels(b, ldb, transB), beta, c, ldc, threading);
    }

    /// <summary>Whether the packed SIMD path exists for T on this machine (callers with their own
    /// <see cref="IPanelSource"/> need it; otherwise they materialize op(B) and call <see cref="Run"/>).</summary>
    public static bool CanPack => Wide || Narrow;

    /// <summary>C = alpha·op(A)·B + beta·C where <paramref name="b"/> writes the K×N operand B panel by panel
    /// straight into the packed layout (convolution uses this to fuse im2col into packing). Needs <see cref="CanPack"/>.</summary>
    public static void Run<TSource>(int m, int n, int k, T alpha, T* a, int lda, Transpose transA, in TSource b, T beta, T* c, int ldc,
        GemmThreading threading) where TSource : struct, IPanelSource
    {
        if (!CanPack) throw new InvalidOperationException($"the packed GEMM is not available for {typeof(T).Name} on this machine");
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == T.Zero)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        Packed(m, n, k, alpha, a, lda, transA, b, beta, c, ldc, threading);
    }

    /// <summary>The B operand of a GEMM, written panel by panel into the packed layout.</summary>
    public interface IPanelSource
    {
        /// <summary>Writes B[k0..k0+depth, j0..j0+width) as depth rows of <paramref name="nr"/> contiguous values each,
        /// zero beyond <paramref name="width"/>.</summary>
        void Pack(T* dst, int k0, int depth, int j0, int width, int nr);
    }

    /// <summary>op(B) of a row-major matrix with leading dimension ldb.</summary>
    private readonly struct MatrixPanels(T* b, int ldb, Transpose trans) : IPanelSource
    {
        private readonly nint _b = (nint)b;

        public void Pack(T* dst, int k0, int depth, int j0, int width, int nr)
        {
            T* b = (T*)_b;
            if (trans == Transpose.None)
            {
                for (int p = 0; p < depth; p++)
                {
                    var d = new Span<T>(dst + (long)p * nr, nr);
                    new ReadOnlySpan<T>(b + (long)(k0 + p) * ldb + j0, width).CopyTo(d);
                    d[width..].Clear();
                }
                return;
            }
            // A transpose: in blocks of TransposeBlock rows of the panel, so the block being written
            // stays in L1 while all NR source rows are read through it.
            for (int p0 = 0; p0 < depth; p0 += TransposeBlock)
            {
                int rows = Math.Min(TransposeBlock, depth - p0);
                for (int j = 0; j < width; j++)
                {
                    T* src = b + (long)(j0 + j) * ldb + k0 + p0;
                    T* d = dst + (long)p0 * nr + j;
                    for (int p = 0; p < rows; p++) d[p * nr] = src[p];
                }
                for (int j = width; j < nr; j++)
                for (int p = 0; p < rows; p++) dst[(long)(p0 + p) * nr + j] = T.Zero;
            }
        }
    }

    private static void ScaleC(int m, int n, T beta, T* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<T>(c + (long)i * ldc, n);
            if (beta == T.Zero) row.Clear();
            else if (beta != T.One) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>The definition, for tiny products and element types without SIMD support.</summary>
    private static void Direct(int m, int n, int k, T alpha, T* a, int lda, Transpose transA, T* b, int ldb, Transpose transB,
        T beta, T* c, int ldc)
    {
        bool ta = transA == Transpose.Transposed, tb = transB == Transpose.Transposed;
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            T sum = T.Zero;
            for (int p = 0; p < k; p++)
                sum += (ta ? a[(long)p * lda + i] : a[(long)i * lda + p]) * (tb ? b[(long)j * ldb + p] : b[(long)p * ldb + j]);
            T* cij = c + (long)i * ldc + j;
            *cij = beta == T.Zero ? alpha * sum : alpha * sum + beta * *cij;
        }
    }

    private static void Packed<TSource>(int m, int n, int k, T alpha, T* a, int lda, Transpose transA, TSource b,
        T beta, T* c, int ldc, GemmThreading threading) where TSource : struct, IPanelSource
    {
        int nr = Nr, mc = Mc;
        int nPanels = (n + nr - 1) / nr;
        int mBlocks = (m + mc - 1) / mc;
        int workers = threading == GemmThreading.Parallel && (long)m * n * k >= ParallelWork ? Environment.ProcessorCount : 1;
        // Split the columns too when there are fewer row blocks than workers. Not finer: every tile packs
        // its rows of A for all of K, which only pays off over many column panels.
        int nChunks = Math.Clamp((workers + mBlocks - 1) / mBlocks, 1, nPanels);
        int panelsPerChunk = (nPanels + nChunks - 1) / nChunks;
        nChunks = (nPanels + panelsPerChunk - 1) / panelsPerChunk;
        int tiles = mBlocks * nChunks;
        // All of op(B) is packed up front when it fits PackedBLimit elements, so each tile runs every K slice
        // without a barrier between slices; larger products go in deeper steps of whole slices.
        int depth = (int)Math.Clamp(PackedBLimit / ((long)nPanels * nr) / Kc * Kc, Kc, (k + Kc - 1) / Kc * Kc);
        int aLength = mc * Math.Min(Kc, k);

        if (beta != T.Zero && beta != T.One) ScaleC(m, n, beta, c, ldc);
        T* bPack = PackBuffer.For(ref t_packB, (long)nPanels * nr * Math.Min(depth, k));
        for (int k0 = 0; k0 < k; k0 += depth)
        {
            var step = new Step(m, n, k0, Math.Min(depth, k - k0), alpha, a, lda, transA, c, ldc, bPack,
                k0 == 0 && beta == T.Zero ? TileStore.Overwrite : TileStore.Accumulate, nChunks, panelsPerChunk);
            if (workers == 1 || tiles == 1)
            {
                PackB(step, b, 0, nPanels);
                T* aPack = PackBuffer.For(ref t_packA, aLength);
                for (int t = 0; t < tiles; t++) Tile(step, t, aPack);
            }
            else
            {
                int packChunks = Math.Min(nPanels, workers);
                Parallel.For(0, packChunks, q => PackB(step, b, q * nPanels / packChunks, (q + 1) * nPanels / packChunks));
                Parallel.For(0, tiles, t => Tile(step, t, PackBuffer.For(ref t_packA, aLength)));
            }
        }
    }

    // Packing buffers live per thread and only grow, so a training step packs without allocating. The
    // B buffer belongs to the thread that calls Run (workers only read it); the A buffer to the thread
    // that runs a tile. Run never re-enters itself on one thread, so neither is used twice at once.
    [ThreadStatic] private static PackBuffer? t_packA;
    [ThreadStatic] private static PackBuffer? t_packB;

    /// <summary>A pinned, 64-byte aligned scratch array that the garbage collector frees with its thread.</summary>
    private sealed class PackBuffer
    {
        private const int Alignment = 64;
        private readonly T[] _array;
        private readonly T* _aligned;
        private readonly long _length;

        private PackBuffer(long length)
        {
            _array = GC.AllocateUninitializedArray<T>(checked((int)(length + Alignment / sizeof(T))), pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            _aligned = (T*)((start + Alignment - 1) & ~(nint)(Alignment - 1));
            _length = length;
        }

        public static T* For(ref PackBuffer? slot, long length)
        {
            if (slot is null || slot._length < length) slot = new PackBuffer(Math.Max(length, (slot?._length ?? 0) * 3 / 2));
            return slot._aligned;
        }
    }

    /// <summary>Panel rows transposed per block when packing a transposed B (8 KiB of float panel).</summary>
    private const int TransposeBlock = 64;

    /// <summary>Most elements of packed op(B) held at once (16 MiB of float).</summary>
    private const long PackedBLimit = 4L << 20;

    /// <summary>Everything one pass over K rows [K0, K0+Depth) of the product needs, passed by value to the workers.</summary>
    private readonly struct Step(int m, int n, int k0, int depth, T alpha, T* a, int lda, Transpose transA,
        T* c, int ldc, T* bPack, TileStore store, int nChunks, int panelsPerChunk)
    {
        public readonly int M = m, N = n, K0 = k0, Depth = depth, Lda = lda, Ldc = ldc, NChunks = nChunks, PanelsPerChunk = panelsPerChunk;
        public readonly T Alpha = alpha;
        public readonly nint A = (nint)a, C = (nint)c, BPack = (nint)bPack;
        public readonly Transpose TransA = transA;
        /// <summary>How the first K slice of this step writes C; later slices always accumulate.</summary>
        public readonly TileStore Store = store;

        /// <summary>Packed op(B) rows [pc, pc+kc) of column panel <paramref name="panel"/>, relative to K0.</summary>
        public T* PanelOfB(int panel, int pc, int kc) => (T*)BPack + (long)panel * Nr * Depth + (long)pc * Nr;
    }

    /// <summary>Packs column panels [first, last) of B[K0..K0+Depth, :]: panel-major, then K slices of kc rows of NR
    /// contiguous values, so the slice [pc, pc+kc) of a panel is contiguous (see <see cref="Step.PanelOfB"/>).</summary>
    private static void PackB<TSource>(in Step s, in TSource b, int first, int last) where TSource : struct, IPanelSource
    {
        int nr = Nr;
        for (int panel = first; panel < last; panel++)
        {
            int j0 = panel * nr;
            b.Pack(s.PanelOfB(panel, 0, s.Depth), s.K0, s.Depth, j0, Math.Min(nr, s.N - j0), nr);
        }
    }

    /// <summary>Packs alpha·op(A)[i0..i0+rows, K0+pc..K0+pc+kc] as MR-row panels, each kc columns of MR contiguous values.</summary>
    private static void PackA(in Step s, int i0, int rows, int pc, int kc, T* dst)
    {
        int mr = Mr, k0 = s.K0 + pc;
        T* a = (T*)s.A;
        T alpha = s.Alpha;
        for (int ir = 0; ir < rows; ir += mr)
        {
            int height = Math.Min(mr, rows - ir);
            T* panel = dst + (long)ir * kc;
            if (s.TransA == Transpose.None)
            {
                // Row by row the reads are contiguous; writing each panel column whole keeps the stores so too.
                T* src = a + (long)(i0 + ir) * s.Lda + k0;
                long lda = s.Lda;
                for (int p = 0; p < kc; p++)
                {
                    T* d = panel + p * mr;
                    for (int r = 0; r < height; r++) d[r] = alpha * src[r * lda + p];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* src = a + (long)(k0 + p) * s.Lda + i0 + ir;
                    T* d = panel + p * mr;
                    for (int r = 0; r < height; r++) d[r] = alpha * src[r];
                }
            }
            for (int r = height; r < mr; r++)
            for (int p = 0; p < kc; p++) panel[p * mr + r] = T.Zero;
        }
    }

    /// <summary>One tile: MC rows × one chunk of column panels, over every K slice of the step.</summary>
    private static void Tile(in Step s, int tile, T* aPack)
    {
        int mr = Mr, nr = Nr;
        int i0 = tile / s.NChunks * Mc, rows = Math.Min(Mc, s.M - i0);
        int firstPanel = tile % s.NChunks * s.PanelsPerChunk;
        int lastPanel = Math.Min(firstPanel + s.PanelsPerChunk, (s.N + nr - 1) / nr);
        T* edge = stackalloc T[mr * nr];
        for (int pc = 0; pc < s.Depth; pc += Kc)
        {
            int kc = Math.Min(Kc, s.Depth - pc);
            var store = pc == 0 ? s.Store : TileStore.Accumulate;
            PackA(s, i0, rows, pc, kc, aPack);
            for (int panel = firstPanel; panel < lastPanel; panel++)
            {
                int j0 = panel * nr, width = Math.Min(nr, s.N - j0);
                T* bPanel = s.PanelOfB(panel, pc, kc);
                for (int ir = 0; ir < rows; ir += mr)
                {
                    int height = Math.Min(mr, rows - ir);
                    T* cTile = (T*)s.C + (long)(i0 + ir) * s.Ldc + j0;
                    if (height == mr && width == nr)
                    {
                        MicroKernel(kc, aPack + (long)ir * kc, bPanel, cTile, s.Ldc, store);
                        continue;
                    }
                    MicroKernel(kc, aPack + (long)ir * kc, bPanel, edge, nr, TileStore.Overwrite);
                    for (int r = 0; r < height; r++)
                    {
                        T* cRow = cTile + (long)r * s.Ldc;
                        T* eRow = edge + r * nr;
                        if (store == TileStore.Overwrite) for (int j = 0; j < width; j++) cRow[j] = eRow[j];
                        else for (int j = 0; j < width; j++) cRow[j] += eRow[j];
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MicroKernel(int kc, T* a, T* b, T* c, int ldc, TileStore store)
    {
        if (Wide) Kernel8x2(kc, a, b, c, ldc, store);
        else Kernel6x2(kc, a, b, c, ldc, store);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> acc)
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        return x * y + acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> acc)
    {
        if (typeof(T) == typeof(float)) return Vector256.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector256.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        return x * y + acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(T* c, Vector512<T> lo, Vector512<T> hi, TileStore store)
    {
        int w = Vector512<T>.Count;
        if (store == TileStore.Accumulate)
        {
            lo += Vector512.Load(c);
            hi += Vector512.Load(c + w);
        }
        lo.Store(c);
        hi.Store(c + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(T* c, Vector256<T> lo, Vector256<T> hi, TileStore store)
    {
        int w = Vector256<T>.Count;
        if (store == TileStore.Accumulate)
        {
            lo += Vector256.Load(c);
            hi += Vector256.Load(c + w);
        }
        lo.Store(c);
        hi.Store(c + w);
    }

    /// <summary>C[8, 2W] (+)= Σ_p a[p,0..8)ᵀ·b[p,0..2W) over packed panels, 16 accumulators in registers.</summary>
    private static void Kernel8x2(int kc, T* a, T* b, T* c, int ldc, TileStore store)
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<T> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + w);
            var x = Vector512.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Fma(x, b0, c60); c61 = Fma(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Fma(x, b0, c70); c71 = Fma(x, b1, c71);
            a += 8;
            b += 2 * w;
        }
        StoreRow(c, c00, c01, store);
        StoreRow(c + ldc, c10, c11, store);
        StoreRow(c + 2 * ldc, c20, c21, store);
        StoreRow(c + 3 * ldc, c30, c31, store);
        StoreRow(c + 4 * ldc, c40, c41, store);
        StoreRow(c + 5 * ldc, c50, c51, store);
        StoreRow(c + 6 * ldc, c60, c61, store);
        StoreRow(c + 7 * ldc, c70, c71, store);
    }

    /// <summary>C[6, 2W] (+)= Σ_p a[p,0..6)ᵀ·b[p,0..2W) for 256-bit vectors (12 accumulators fit the 16 ymm registers).</summary>
    private static void Kernel6x2(int kc, T* a, T* b, T* c, int ldc, TileStore store)
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + w);
            var x = Vector256.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            a += 6;
            b += 2 * w;
        }
        StoreRow(c, c00, c01, store);
        StoreRow(c + ldc, c10, c11, store);
        StoreRow(c + 2 * ldc, c20, c21, store);
        StoreRow(c + 3 * ldc, c30, c31, store);
        StoreRow(c + 4 * ldc, c40, c41, store);
        StoreRow(c + 5 * ldc, c50, c51, store);
    }
}
