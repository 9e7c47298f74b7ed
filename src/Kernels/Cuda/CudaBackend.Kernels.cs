// Launchers of the hand-written kernels in kernels/elementwise.cu, ntxent.cu, cosine.cu, lars.cu and pool.cu: argument
// checks with clear messages, grid sizing (Launch/KernelGrids.cs), and one cuLaunchKernel per kernel with the
// arguments passed through a stack-allocated pointer array (no boxing, no allocation per launch), in the
// order of the kernel's parameter list. Every launch is queued on the backend's stream; nothing here
// synchronizes.
//
// Scratch: IBackend passes no scratch for the deterministic reductions (the NT-Xent column-split states and
// per-block loss terms, the cross-entropy per-block terms, LARS's per-chunk partial norms and ticket
// counters). The backend keeps one float scratch buffer and one counter buffer for them, sized at plan time
// by ReserveKernelScratch or else at first use, and grown only when a larger problem arrives, so with fixed
// shapes nothing allocates after the first step (AllocationCount stays flat, and the launches can be
// captured into a CUDA graph once a step has run uncaptured). Growing synchronizes the stream before the
// old buffer is freed.
//
// Determinism: the grids of kernels that write per-block partials depend only on the problem size (and for
// LARS on the device's SM count), and the partials are summed in a fixed order, so results are bitwise
// reproducible run to run on a given GPU.
using System.Runtime.CompilerServices;
using SimClr.Kernels.Cuda.Launch;

namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private const int KernelBlock = KernelGrids.Block;
    private const int MaxPartialBlocks = KernelGrids.MaxPartialBlocks;
    private const int MaxGridY = KernelGrids.MaxGridY;
    private const int MinScratchFloats = 1 << 16;

    private CudaStorage<float>? _kernelScratch;
    private CudaStorage<uint>? _larsCounters;

    private KernelSet _k;

    /// <summary>Entry points, resolved on first use and kept (GetFunction's lookup is skipped afterwards).</summary>
    private struct KernelSet
    {
        public CudaFunction Fill, Copy, Scale, Axpy, Add, ReluFwd, ReluBwd, GapFwd, GapBwd, L2Fwd, L2Bwd, XentFwd, XentBwd, MeanReduce;
        public CudaFunction NtxNorms, NtxFwdTiles, NtxFwdRows, NtxLoss, NtxBwdTiles, NtxBwdRows, Cosine, LarsNorms, LarsUpdate, SgdUpdate;
        public CudaFunction PoolFwd, PoolBwd;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private CudaFunction Kernel(ref CudaFunction slot, string module, string name)
    {
        if (!slot.IsLoaded) slot = GetFunction(module, name);
        return slot;
    }

    // ---- grid sizing (KernelGrids) ----------------------------------------------------------------------

    private Dim3 ElementwiseBlocks(long n) => new(KernelGrids.Elementwise(n, MultiprocessorCount));

    private Dim3 PerElementBlocks(long n) => new(KernelGrids.PerElement(n, MultiprocessorCount));

    private Dim3 RowBlocks(long rows) => new(KernelGrids.Rows(rows, MultiprocessorCount));

    // ---- scratch -------------------------------------------------------------------------------------

    /// <summary>Sizes the kernels' persistent scratch now (at plan time) for NT-Xent over up to
    /// <paramref name="ntXentRows"/> rows and optimizer updates over up to <paramref name="optimizerSegments"/>
    /// segments, so that not even the first training step allocates. Without it the scratch is sized at first use.</summary>
    public void ReserveKernelScratch(int ntXentRows = 0, int optimizerSegments = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ntXentRows);
        ArgumentOutOfRangeException.ThrowIfNegative(optimizerSegments);
        long floats = MaxPartialBlocks;
        // The split count falls as 2N grows, so a smaller 2N can need more: take the largest need up to ntXentRows.
        for (int tiles = 1; tiles <= KernelGrids.Tiles(ntXentRows); tiles++)
        {
            int rows = Math.Min(tiles * KernelGrids.SimilarityTile, ntXentRows);
            floats = Math.Max(floats, NtXentScratchFloats(rows, rows));
        }
        if (optimizerSegments > 0)
        {
            // Chunks per segment fall as segments are added; again take the largest need.
            for (int segments = 1; segments <= optimizerSegments; segments++)
                floats = Math.Max(floats, LarsScratchFloats(segments));
            LarsCounters(optimizerSegments);
        }
        Scratch(floats);
    }

    /// <summary>Per-block loss terms, then a (max, Σexp) state per split for each of the call's rows.</summary>
    private long NtXentScratchFloats(int rowCount, int rows) => MaxPartialBlocks + 2L * KernelGrids.NtXentSplits(rowCount, rows, MultiprocessorCount).Splits * rowCount;

    /// <summary>LARS partials are doubles: 2 per (segment, chunk), i.e. 4 floats.</summary>
    private long LarsScratchFloats(int segments) => 4L * segments * KernelGrids.OptimizerChunks(segments, MultiprocessorCount);

    /// <summary>The kernel scratch with room for at least <paramref name="floats"/> floats.</summary>
    private nint Scratch(long floats)
    {
        if (_kernelScratch is null || _kernelScratch.Length < floats)
        {
            if (_kernelScratch is not null)
            {
                Synchronize(); // queued kernels may still use the old buffer
                _kernelScratch.Dispose();
            }
            _kernelScratch = (CudaStorage<float>)Allocate<float>(Math.Max(floats, MinScratchFloats));
        }
        return _kernelScratch.Address;
    }

    /// <summary>LARS's per-segment ticket counters: zero when allocated and re-armed to zero by lars_norms.</summary>
    private nint LarsCounters(int segments)
    {
        if (_larsCounters is null || _larsCounters.Length < segments)
        {
            if (_larsCounters is not null)
            {
                Synchronize();
                _larsCounters.Dispose();
            }
            _larsCounters = (CudaStorage<uint>)Allocate<uint>(Math.Max(segments, 256));
        }
        return _larsCounters.Address;
    }

    // ---- argument checks -----------------------------------------------------------------------------

    private static void RequireSameLength<U>(Tensor<U> t, long length, string name, string op) where U : unmanaged
    {
        if (t.IsEmpty) throw new ArgumentException($"{op}: {name} is empty but {length} elements are needed", name);
        if (t.Length != length) throw new ArgumentException($"{op}: {name} has {t.Length} elements ({t.Shape}) but {length} are needed", name);
    }

    private nint Arg<U>(Tensor<U> t, long length, string name, string op) where U : unmanaged
    {
        RequireSameLength(t, length, name, op);
        return DevicePointer(t, length, name);
    }

    private static void RequirePositive(int value, string name, string op)
    {
        if (value <= 0) throw new ArgumentException($"{op}: {name} must be positive, got {value}", name);
    }

    private static void RequireEpsilon(double eps, string op)
    {
        if (!(eps > 0) || double.IsInfinity(eps)) throw new ArgumentException($"{op}: Epsilon must be positive and finite, got {eps}");
    }

    // ---- element-wise --------------------------------------------------------------------------------

    public unsafe void Fill(Tensor<float> x, double value)
    {
        long n = x.Length;
        nint px = Arg(x, n, nameof(x), nameof(Fill));
        if (n == 0) return;
        float v = (float)value;
        void** args = stackalloc void*[] { &px, &n, &v };
        Launch(Kernel(ref _k.Fill, "elementwise", "fill_f32"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void Copy(Tensor<float> dst, Tensor<float> src)
    {
        long n = dst.Length;
        nint pd = Arg(dst, n, nameof(dst), nameof(Copy)), ps = Arg(src, n, nameof(src), nameof(Copy));
        if (n == 0) return;
        void** args = stackalloc void*[] { &pd, &ps, &n };
        Launch(Kernel(ref _k.Copy, "elementwise", "copy_f32"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void Scale(Tensor<float> x, double alpha)
    {
        long n = x.Length;
        nint px = Arg(x, n, nameof(x), nameof(Scale));
        if (n == 0) return;
        float a = (float)alpha;
        void** args = stackalloc void*[] { &px, &n, &a };
        Launch(Kernel(ref _k.Scale, "elementwise", "scale_f32"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void Axpy(Tensor<float> y, double alpha, Tensor<float> x)
    {
        long n = y.Length;
        nint py = Arg(y, n, nameof(y), nameof(Axpy)), px = Arg(x, n, nameof(x), nameof(Axpy));
        if (n == 0) return;
        float a = (float)alpha;
        void** args = stackalloc void*[] { &py, &px, &n, &a };
        Launch(Kernel(ref _k.Axpy, "elementwise", "axpy_f32"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void Add(Tensor<float> y, Tensor<float> a, Tensor<float> b)
    {
        long n = y.Length;
        nint py = Arg(y, n, nameof(y), nameof(Add)), pa = Arg(a, n, nameof(a), nameof(Add)), pb = Arg(b, n, nameof(b), nameof(Add));
        if (n == 0) return;
        void** args = stackalloc void*[] { &py, &pa, &pb, &n };
        Launch(Kernel(ref _k.Add, "elementwise", "add_f32"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void ReluForward(Tensor<float> y, Tensor<float> x)
    {
        long n = y.Length;
        nint py = Arg(y, n, nameof(y), nameof(ReluForward)), px = Arg(x, n, nameof(x), nameof(ReluForward));
        if (n == 0) return;
        void** args = stackalloc void*[] { &py, &px, &n };
        Launch(Kernel(ref _k.ReluFwd, "elementwise", "relu_fwd"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    public unsafe void ReluBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y)
    {
        long n = dx.Length;
        const string op = nameof(ReluBackward);
        nint pdx = Arg(dx, n, nameof(dx), op), pdy = Arg(dy, n, nameof(dy), op), py = Arg(y, n, nameof(y), op);
        if (n == 0) return;
        void** args = stackalloc void*[] { &pdx, &pdy, &py, &n };
        Launch(Kernel(ref _k.ReluBwd, "elementwise", "relu_bwd"), ElementwiseBlocks(n), KernelBlock, 0, args);
    }

    // ---- pooling -------------------------------------------------------------------------------------

    public unsafe void GlobalAvgPoolForward(Tensor<float> y, Tensor<float> x, int batch, int channels, int spatial)
    {
        const string op = nameof(GlobalAvgPoolForward);
        RequirePositive(batch, nameof(batch), op); RequirePositive(channels, nameof(channels), op); RequirePositive(spatial, nameof(spatial), op);
        long rows = (long)batch * channels;
        nint py = Arg(y, rows, nameof(y), op), px = Arg(x, rows * spatial, nameof(x), op);
        void** args = stackalloc void*[] { &py, &px, &rows, &spatial };
        Launch(Kernel(ref _k.GapFwd, "elementwise", "global_avg_pool_fwd"), RowBlocks(rows), KernelBlock, 0, args);
    }

    public unsafe void GlobalAvgPoolBackward(Tensor<float> dx, Tensor<float> dy, int batch, int channels, int spatial)
    {
        const string op = nameof(GlobalAvgPoolBackward);
        RequirePositive(batch, nameof(batch), op); RequirePositive(channels, nameof(channels), op); RequirePositive(spatial, nameof(spatial), op);
        long rows = (long)batch * channels;
        nint pdx = Arg(dx, rows * spatial, nameof(dx), op), pdy = Arg(dy, rows, nameof(dy), op);
        void** args = stackalloc void*[] { &pdx, &pdy, &rows, &spatial };
        Launch(Kernel(ref _k.GapBwd, "elementwise", "global_avg_pool_bwd"), PerElementBlocks(rows * spatial), KernelBlock, 0, args);
    }

    /// <summary>kernels/pool.cu's max pooling (CudaBackendOptions.MaxPool = Kernel); the shape is checked by the caller.</summary>
    private unsafe void MaxPoolKernelForward(Tensor<float> y, Tensor<float> x, in PoolShape s)
    {
        int planes = checked(s.Batch * s.Channels), height = s.InHeight, width = s.InWidth, outH = s.OutHeight, outW = s.OutWidth;
        int window = s.Window, stride = s.Stride, pad = s.Pad;
        long outputs = (long)planes * outH * outW;
        nint py = DevicePointer(y, outputs, nameof(y)), px = DevicePointer(x, (long)planes * height * width, nameof(x));
        void** args = stackalloc void*[] { &py, &px, &planes, &height, &width, &outH, &outW, &window, &stride, &pad };
        Launch(Kernel(ref _k.PoolFwd, "pool", "maxpool_fwd"), PerElementBlocks(outputs), KernelBlock, 0, args);
    }

    private unsafe void MaxPoolKernelBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> x, in PoolShape s)
    {
        int planes = checked(s.Batch * s.Channels), height = s.InHeight, width = s.InWidth, outH = s.OutHeight, outW = s.OutWidth;
        int window = s.Window, stride = s.Stride, pad = s.Pad;
        long inputs = (long)planes * height * width;
        nint pdx = DevicePointer(dx, inputs, nameof(dx)), pdy = DevicePointer(dy, (long)planes * outH * outW, nameof(dy)), px = DevicePointer(x, inputs, nameof(x));
        void** args = stackalloc void*[] { &pdx, &pdy, &px, &planes, &height, &width, &outH, &outW, &window, &stride, &pad };
        Launch(Kernel(ref _k.PoolBwd, "pool", "maxpool_bwd"), PerElementBlocks(inputs), KernelBlock, 0, args);
    }

    // ---- SimCLR --------------------------------------------------------------------------------------

    public unsafe void L2NormalizeForward(Tensor<float> y, Tensor<float> norms, Tensor<float> x, in RowsShape s)
    {
        const string op = nameof(L2NormalizeForward);
        RequirePositive(s.Rows, "Rows", op); RequirePositive(s.Cols, "Cols", op); RequireEpsilon(s.Epsilon, op);
        long n = (long)s.Rows * s.Cols;
        nint py = Arg(y, n, nameof(y), op), pn = Arg(norms, s.Rows, nameof(norms), op), px = Arg(x, n, nameof(x), op);
        int rows = s.Rows, cols = s.Cols;
        float eps = (float)s.Epsilon;
        void** args = stackalloc void*[] { &py, &pn, &px, &rows, &cols, &eps };
        Launch(Kernel(ref _k.L2Fwd, "elementwise", "l2_normalize_fwd"), RowBlocks(rows), KernelBlock, 0, args);
    }

    public unsafe void L2NormalizeBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> norms, in RowsShape s)
    {
        const string op = nameof(L2NormalizeBackward);
        RequirePositive(s.Rows, "Rows", op); RequirePositive(s.Cols, "Cols", op); RequireEpsilon(s.Epsilon, op);
        long n = (long)s.Rows * s.Cols;
        nint pdx = Arg(dx, n, nameof(dx), op), pdy = Arg(dy, n, nameof(dy), op), py = Arg(y, n, nameof(y), op), pn = Arg(norms, s.Rows, nameof(norms), op);
        int rows = s.Rows, cols = s.Cols;
        float eps = (float)s.Epsilon;
        void** args = stackalloc void*[] { &pdx, &pdy, &py, &pn, &rows, &cols, &eps };
        Launch(Kernel(ref _k.L2Bwd, "elementwise", "l2_normalize_bwd"), RowBlocks(rows), KernelBlock, 0, args);
    }

    private static void CheckNtXent(in NtXentShape s, string op)
    {
        try { s.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"{op}: {e.Message}", nameof(s)); }
        RequireEpsilon(s.Epsilon, op);
    }

    public unsafe void NtXentForward(Tensor<float> loss, Tensor<float> rowLse, Tensor<float> norms, Tensor<float> z, in NtXentShape s)
    {
        const string op = nameof(NtXentForward);
        CheckNtXent(s, op);
        int rows = s.Rows, dim = s.Dim, rowStart = s.RowStart, rowCount = s.RowCount, pairs = s.PairBlock;
        nint pLoss = Arg(loss, 1, nameof(loss), op), pLse = Arg(rowLse, rows, nameof(rowLse), op);
        nint pNorms = Arg(norms, rows, nameof(norms), op), pz = Arg(z, (long)rows * dim, nameof(z), op);
        float invTau = (float)(1.0 / s.Temperature), eps = (float)s.Epsilon;
        var (splits, tilesPerSplit) = KernelGrids.NtXentSplits(rowCount, rows, MultiprocessorCount);
        int rowTiles = KernelGrids.Tiles(rowCount);
        int partialBlocks = KernelGrids.PartialBlocks(rowCount);
        float meanScale = 1f / rows;

        nint terms = Scratch(NtXentScratchFloats(rowCount, rows));
        nint state = terms + MaxPartialBlocks * sizeof(float);

        void** normArgs = stackalloc void*[] { &pNorms, &pz, &rows, &dim };
        Launch(Kernel(ref _k.NtxNorms, "ntxent", "ntxent_row_norms"), RowBlocks(rows), KernelBlock, 0, normArgs);
        void** tileArgs = stackalloc void*[] { &state, &pz, &pNorms, &rows, &dim, &invTau, &eps, &tilesPerSplit, &rowStart, &rowCount };
        Launch(Kernel(ref _k.NtxFwdTiles, "ntxent", "ntxent_fwd_tiles"), new Dim3((uint)rowTiles, (uint)splits), KernelBlock, 0, tileArgs);
        void** rowArgs = stackalloc void*[] { &pLse, &terms, &state, &pz, &pNorms, &dim, &invTau, &eps, &splits, &rowStart, &rowCount, &pairs };
        Launch(Kernel(ref _k.NtxFwdRows, "ntxent", "ntxent_fwd_rows"), new Dim3((uint)partialBlocks), KernelBlock, 0, rowArgs);
        void** lossArgs = stackalloc void*[] { &pLoss, &terms, &partialBlocks, &meanScale };
        Launch(Kernel(ref _k.NtxLoss, "ntxent", "ntxent_loss_reduce"), 1, KernelBlock, 0, lossArgs);
    }

    public unsafe void NtXentBackward(Tensor<float> dz, Tensor<float> z, Tensor<float> rowLse, Tensor<float> norms, in NtXentShape s, double lossGrad = 1.0)
    {
        const string op = nameof(NtXentBackward);
        CheckNtXent(s, op);
        if (!double.IsFinite(lossGrad)) throw new ArgumentException($"{op}: lossGrad must be finite, got {lossGrad}", nameof(lossGrad));
        int rows = s.Rows, dim = s.Dim, rowStart = s.RowStart, rowCount = s.RowCount, pairs = s.PairBlock;
        nint pdz = Arg(dz, (long)rowCount * dim, nameof(dz), op), pz = Arg(z, (long)rows * dim, nameof(z), op);
        nint pLse = Arg(rowLse, rows, nameof(rowLse), op), pNorms = Arg(norms, rows, nameof(norms), op);
        float invTau = (float)(1.0 / s.Temperature), eps = (float)s.Epsilon;
        float coef = (float)(lossGrad / (rows * s.Temperature));
        int rowTiles = KernelGrids.Tiles(rowCount);
        int slices = (dim + KernelGrids.NtXentDSlice - 1) / KernelGrids.NtXentDSlice;
        if (slices > MaxGridY) throw new ArgumentException($"{op}: Dim {dim} exceeds the kernel's grid", nameof(s));

        void** tileArgs = stackalloc void*[] { &pdz, &pz, &pLse, &pNorms, &rows, &dim, &invTau, &eps, &coef, &rowStart, &rowCount };
        Launch(Kernel(ref _k.NtxBwdTiles, "ntxent", "ntxent_bwd_tiles"), new Dim3((uint)rowTiles, (uint)slices), KernelBlock, 0, tileArgs);
        void** rowArgs = stackalloc void*[] { &pdz, &pz, &pNorms, &dim, &eps, &coef, &rowStart, &rowCount, &pairs };
        Launch(Kernel(ref _k.NtxBwdRows, "ntxent", "ntxent_bwd_rows"), RowBlocks(rowCount), KernelBlock, 0, rowArgs);
    }

    public unsafe void CosineSimilarity(Tensor<float> s, Tensor<float> a, Tensor<float> b, int m, int n, int dim)
    {
        const string op = nameof(CosineSimilarity);
        RequirePositive(m, nameof(m), op); RequirePositive(n, nameof(n), op); RequirePositive(dim, nameof(dim), op);
        int rowTiles = KernelGrids.Tiles(m);
        if (rowTiles > MaxGridY) throw new ArgumentException($"{op}: m = {m} exceeds the kernel's grid ({MaxGridY * KernelGrids.SimilarityTile} rows)", nameof(m));
        nint ps = Arg(s, (long)m * n, nameof(s), op), pa = Arg(a, (long)m * dim, nameof(a), op), pb = Arg(b, (long)n * dim, nameof(b), op);
        float eps = (float)CosineEpsilon;
        void** args = stackalloc void*[] { &ps, &pa, &pb, &m, &n, &dim, &eps };
        Launch(Kernel(ref _k.Cosine, "cosine", "cosine_similarity"), new Dim3((uint)KernelGrids.Tiles(n), (uint)rowTiles), KernelBlock, 0, args);
    }

    /// <summary>Rows shorter than this are divided by it instead of their norm (as the CPU twin).</summary>
    private const double CosineEpsilon = 1e-12;

    // ---- classification ------------------------------------------------------------------------------

    /// <summary>A label outside [0, Classes) cannot be reported from the kernel without a synchronization:
    /// it makes the loss NaN instead (the CPU backend throws).</summary>
    public unsafe void SoftmaxCrossEntropyForward(Tensor<float> loss, Tensor<float> probs, Tensor<float> logits, Tensor<int> labels, in ClassShape s)
    {
        const string op = nameof(SoftmaxCrossEntropyForward);
        RequirePositive(s.Batch, "Batch", op); RequirePositive(s.Classes, "Classes", op);
        long n = (long)s.Batch * s.Classes;
        nint pLoss = Arg(loss, 1, nameof(loss), op), pProbs = Arg(probs, n, nameof(probs), op);
        nint pLogits = Arg(logits, n, nameof(logits), op), pLabels = Arg(labels, s.Batch, nameof(labels), op);
        int rows = s.Batch, classes = s.Classes;
        int partialBlocks = KernelGrids.PartialBlocks(rows);
        float meanScale = 1f / rows;
        nint terms = Scratch(MaxPartialBlocks);

        void** rowArgs = stackalloc void*[] { &pProbs, &terms, &pLogits, &pLabels, &rows, &classes };
        Launch(Kernel(ref _k.XentFwd, "elementwise", "softmax_xent_fwd"), new Dim3((uint)partialBlocks), KernelBlock, 0, rowArgs);
        void** lossArgs = stackalloc void*[] { &pLoss, &terms, &partialBlocks, &meanScale };
        Launch(Kernel(ref _k.MeanReduce, "elementwise", "mean_reduce"), 1, KernelBlock, 0, lossArgs);
    }

    public unsafe void SoftmaxCrossEntropyBackward(Tensor<float> dlogits, Tensor<float> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0)
    {
        const string op = nameof(SoftmaxCrossEntropyBackward);
        RequirePositive(s.Batch, "Batch", op); RequirePositive(s.Classes, "Classes", op);
        long n = (long)s.Batch * s.Classes;
        nint pd = Arg(dlogits, n, nameof(dlogits), op), pp = Arg(probs, n, nameof(probs), op), pl = Arg(labels, s.Batch, nameof(labels), op);
        int rows = s.Batch, classes = s.Classes;
        float scale = (float)(lossGrad / s.Batch);
        void** args = stackalloc void*[] { &pd, &pp, &pl, &rows, &classes, &scale };
        Launch(Kernel(ref _k.XentBwd, "elementwise", "softmax_xent_bwd"), PerElementBlocks(n), KernelBlock, 0, args);
    }

    // ---- optimizers ----------------------------------------------------------------------------------

    /// <summary>Checks the flat buffers and returns the segment count. The segment table itself lives on the
    /// device and is not read back (that would synchronize every step): its offsets and lengths must be
    /// valid and non-overlapping, as the parameter store that builds it guarantees.</summary>
    private int CheckOptimizerBuffers(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, string op)
    {
        if (param.IsEmpty) throw new ArgumentException($"{op}: param is empty", nameof(param));
        RequireSameLength(momentum, param.Length, nameof(momentum), op);
        RequireSameLength(grad, param.Length, nameof(grad), op);
        if (segments.IsEmpty) throw new ArgumentException($"{op}: segments is empty", nameof(segments));
        if (segments.Length > MaxGridY) throw new ArgumentException($"{op}: {segments.Length} segments exceed the kernel's grid ({MaxGridY})", nameof(segments));
        return (int)segments.Length;
    }

    public unsafe void LarsUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, Tensor<float> normScratch, in LarsHyper h)
    {
        const string op = nameof(LarsUpdate);
        int count = CheckOptimizerBuffers(param, momentum, grad, segments, op);
        if (!(h.LearningRate >= 0) || !double.IsFinite(h.LearningRate)) throw new ArgumentException($"{op}: learning rate must be finite and ≥ 0, got {h.LearningRate}", nameof(h));
        long n = param.Length;
        nint pw = Arg(param, n, nameof(param), op), pv = Arg(momentum, n, nameof(momentum), op), pg = Arg(grad, n, nameof(grad), op);
        nint pSeg = Arg(segments, count, nameof(segments), op), pNorms = Arg(normScratch, 2L * count, nameof(normScratch), op);
        int chunks = KernelGrids.OptimizerChunks(count, MultiprocessorCount);
        nint partials = Scratch(LarsScratchFloats(count));
        nint counters = LarsCounters(count);
        float lr = (float)h.LearningRate, m = (float)h.Momentum, wd = (float)h.WeightDecay, eta = (float)h.TrustCoefficient;
        var grid = new Dim3((uint)chunks, (uint)count);

        void** normArgs = stackalloc void*[] { &pNorms, &partials, &counters, &pw, &pg, &pSeg, &chunks, &wd };
        Launch(Kernel(ref _k.LarsNorms, "lars", "lars_norms"), grid, KernelBlock, 0, normArgs);
        void** updateArgs = stackalloc void*[] { &pw, &pv, &pg, &pSeg, &pNorms, &chunks, &lr, &m, &wd, &eta };
        Launch(Kernel(ref _k.LarsUpdate, "lars", "lars_update"), grid, KernelBlock, 0, updateArgs);
    }

    public unsafe void SgdMomentumUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, in SgdHyper h)
    {
        const string op = nameof(SgdMomentumUpdate);
        int count = CheckOptimizerBuffers(param, momentum, grad, segments, op);
        if (!(h.LearningRate >= 0) || !double.IsFinite(h.LearningRate)) throw new ArgumentException($"{op}: learning rate must be finite and ≥ 0, got {h.LearningRate}", nameof(h));
        long n = param.Length;
        nint pw = Arg(param, n, nameof(param), op), pv = Arg(momentum, n, nameof(momentum), op), pg = Arg(grad, n, nameof(grad), op);
        nint pSeg = Arg(segments, count, nameof(segments), op);
        int chunks = KernelGrids.OptimizerChunks(count, MultiprocessorCount);
        float lr = (float)h.LearningRate, m = (float)h.Momentum, wd = (float)h.WeightDecay;
        int nesterov = h.Kind == MomentumKind.Nesterov ? 1 : 0;
        void** args = stackalloc void*[] { &pw, &pv, &pg, &pSeg, &chunks, &lr, &m, &wd, &nesterov };
        Launch(Kernel(ref _k.SgdUpdate, "lars", "sgd_update"), new Dim3((uint)chunks, (uint)count), KernelBlock, 0, args);
    }
}
