// NCHW convolution on the CPU: im2col + GEMM (any kernel, stride and padding; no groups or dilation).
// For one sample, col[(ci·KH+kh)·KW+kw, oh·OW+ow] = x[ci, oh·sh−ph+kh, ow·sw−pw+kw] (0 outside), so
//   forward          y[Cout, OH·OW]  = W[Cout, Cin·KH·KW] · col
//   backward-data    dcol            = Wᵀ · dy, then col2im scatters dcol into dx (overwritten)
//   backward-filter  dW             += dy · colᵀ
// Samples go to the GEMMs in groups laid side by side (col is [Cin·KH·KW, G·OH·OW]) so that deep layers
// with small images still give GEMMs wide enough to amortize packing the weights; groups are spread
// over the workers. With the packed GEMM, the forward and filter passes write im2col (or its transpose)
// straight into the GEMM's B panels; backward-data materializes dcol for col2im. A 1×1, stride-1,
// unpadded kernel on single-sample groups uses x itself as col.
using System.Buffers;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public unsafe void Conv2dForward(Tensor<T> y, Tensor<T> x, Tensor<T> w, in Conv2dShape s)
    {
        const string op = nameof(Conv2dForward);
        CheckConv(s, op);
        Need(y, s.OutputElements, nameof(y), op);
        Need(x, s.InputElements, nameof(x), op);
        Need(w, s.WeightElements, nameof(w), op);
        var g = new ConvGeometry(s);
        nint xp = x.Address, yp = y.Address, wp = w.Address;
        bool fused = CpuGemm<T>.CanPack && !g.Direct;
        g.ForEachGroup(fused ? ColScratch.None : ColScratch.Needed, (n0, count, col, gathered, _) =>
        {
            int cols = count * g.Ohw;
            T* dst = count == 1 ? (T*)yp + (long)n0 * g.OutSample : (T*)gathered;
            if (fused)
            {
                CpuGemm<T>.Run(g.Cout, cols, g.Ckk, T.One, (T*)wp, g.Ckk, Transpose.None, new Im2ColPanels(g, (T*)xp, n0),
                    T.Zero, dst, cols, GemmThreading.Serial);
            }
            else
            {
                T* src = g.Direct ? (T*)xp + (long)n0 * g.InSample : g.Im2ColGroup((T*)col, (T*)xp, n0, count);
                CpuGemm<T>.Run(g.Cout, cols, g.Ckk, T.One, (T*)wp, g.Ckk, Transpose.None, src, cols, Transpose.None,
                    T.Zero, dst, cols, GemmThreading.Serial);
            }
            if (count > 1) g.ScatterOutput((T*)yp, dst, n0, count);
        });
    }

    public unsafe void Conv2dBackwardData(Tensor<T> dx, Tensor<T> dy, Tensor<T> w, in Conv2dShape s)
    {
        const string op = nameof(Conv2dBackwardData);
        CheckConv(s, op);
        Need(dx, s.InputElements, nameof(dx), op);
        Need(dy, s.OutputElements, nameof(dy), op);
        Need(w, s.WeightElements, nameof(w), op);
        var g = new ConvGeometry(s);
        nint dxp = dx.Address, dyp = dy.Address, wp = w.Address;
        g.ForEachGroup(ColScratch.Needed, (n0, count, col, gathered, _) =>
        {
            int cols = count * g.Ohw;
            T* dyGroup = count == 1 ? (T*)dyp + (long)n0 * g.OutSample : g.GatherOutput((T*)gathered, (T*)dyp, n0, count);
            T* dcol = g.Direct ? (T*)dxp + (long)n0 * g.InSample : (T*)col;
            CpuGemm<T>.Run(g.Ckk, cols, g.Cout, T.One, (T*)wp, g.Ckk, Transpose.Transposed, dyGroup, cols, Transpose.None,
                T.Zero, dcol, cols, GemmThreading.Serial);
            if (!g.Direct) g.Col2ImGroup((T*)dxp, dcol, n0, count);
        });
    }

    public unsafe void Conv2dBackwardFilter(Tensor<T> dw, Tensor<T> dy, Tensor<T> x, in Conv2dShape s)
    {
        const string op = nameof(Conv2dBackwardFilter);
        CheckConv(s, op);
        var dws = Need(dw, s.WeightElements, nameof(dw), op);
        Need(dy, s.OutputElements, nameof(dy), op);
        Need(x, s.InputElements, nameof(x), op);
        var g = new ConvGeometry(s);
        nint dyp = dy.Address, xp = x.Address;

        // Each worker accumulates its groups into a private partial dW; the partials are then added to dw
        // in worker order, so the result does not depend on scheduling.
        int weights = (int)s.WeightElements;
        var partials = ArrayPool<T>.Shared.Rent(g.Workers * weights);
        try
        {
            fixed (T* pp = partials)
            {
                nint partialp = (nint)pp;
                new Span<T>(pp, g.Workers * weights).Clear();
                bool fused = CpuGemm<T>.CanPack && !g.Direct;
                g.ForEachGroup(fused ? ColScratch.None : ColScratch.Needed, (n0, count, col, gathered, worker) =>
                {
                    int cols = count * g.Ohw;
                    T* dyGroup = count == 1 ? (T*)dyp + (long)n0 * g.OutSample : g.GatherOutput((T*)gathered, (T*)dyp, n0, count);
                    T* acc = (T*)partialp + (long)worker * weights;
                    if (fused)
                    {
                        CpuGemm<T>.Run(g.Cout, g.Ckk, cols, T.One, dyGroup, cols, Transpose.None, new TransposedIm2ColPanels(g, (T*)xp, n0),
                            T.One, acc, g.Ckk, GemmThreading.Serial);
                        return;
                    }
                    T* colGroup = g.Direct ? (T*)xp + (long)n0 * g.InSample : g.Im2ColGroup((T*)col, (T*)xp, n0, count);
                    CpuGemm<T>.Run(g.Cout, g.Ckk, cols, T.One, dyGroup, cols, Transpose.None, colGroup, cols, Transpose.Transposed,
                        T.One, acc, g.Ckk, GemmThreading.Serial);
                });
            }
            for (int wk = 0; wk < g.Workers; wk++)
                System.Numerics.Tensors.TensorPrimitives.Add(dws, partials.AsSpan(wk * weights, weights), dws);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(partials);
        }
    }

    private static void CheckConv(in Conv2dShape s, string op)
    {
        try { s.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"{op}: {e.Message}", nameof(s)); }
        // A group's col scratch holds Cin·KH·KW rows of fewer than OH·OW + MinColumns columns.
        if (s.InputElements > int.MaxValue || s.OutputElements > int.MaxValue
            || (long)s.InChannels * s.KernelH * s.KernelW * ((long)s.OutHeight * s.OutWidth + ConvGeometry.MinColumns) > Array.MaxLength
            || s.WeightElements * Environment.ProcessorCount > Array.MaxLength)
            throw new ArgumentException($"{op}: {s} is too large for the CPU backend", nameof(s));
    }

    private delegate void GroupBody(int n0, int count, nint col, nint gathered, int worker);

    /// <summary>Whether a convolution pass needs the im2col matrix materialized.</summary>
    private enum ColScratch { None, Needed }

    /// <summary>The col matrix of a group of samples starting at n0 (column j = s·OH·OW + oh·OW + ow), written
    /// straight into the GEMM's packed B panels: per panel row, runs along output rows are copied from x.</summary>
    private readonly unsafe struct Im2ColPanels(ConvGeometry g, T* x, int n0) : CpuGemm<T>.IPanelSource
    {
        private readonly nint _x = (nint)x;

        public void Pack(T* dst, int k0, int depth, int j0, int width, int nr)
        {
            int ohw = g.Ohw;
            int sample0 = j0 / ohw, oh0 = j0 % ohw / g.Ow, ow0 = j0 % g.Ow;
            int ci = k0 / (g.Kh * g.Kw), kh = k0 / g.Kw % g.Kh, kw = k0 % g.Kw;
            for (int p = 0; p < depth; p++)
            {
                var (lo, hi) = g.ValidColumns(kw);
                var d = new Span<T>(dst + (long)p * nr, nr);
                T* channel = (T*)_x + (long)ci * g.H * g.W - g.Pw + kw;
                int sample = sample0, oh = oh0, ow = ow0;
                for (int t = 0; t < width;)
                {
                    int run = Math.Min(width - t, g.Ow - ow);
                    int ih = oh * g.Sh - g.Ph + kh;
                    int first = Math.Max(ow, lo), end = Math.Min(ow + run, hi);
                    var seg = d.Slice(t, run);
                    if ((uint)ih >= (uint)g.H || first >= end) seg.Clear();
                    else
                    {
                        seg[..(first - ow)].Clear();
                        seg[(end - ow)..].Clear();
                        T* src = channel + (long)(n0 + sample) * g.InSample + (long)ih * g.W + first * g.Sw;
                        var valid = seg[(first - ow)..(end - ow)];
                        if (g.Sw == 1) new ReadOnlySpan<T>(src, valid.Length).CopyTo(valid);
                        else for (int i = 0; i < valid.Length; i++, src += g.Sw) valid[i] = *src;
                    }
                    t += run;
                    ow += run;
                    if (ow == g.Ow) { ow = 0; if (++oh == g.Oh) { oh = 0; sample++; } }
                }
                d[width..].Clear();
                if (++kw == g.Kw) { kw = 0; if (++kh == g.Kh) { kh = 0; ci++; } }
            }
        }
    }

    /// <summary>colᵀ of a group of samples starting at n0, as the B operand of the filter gradient: row p of B is the
    /// output position p (s·OH·OW + oh·OW + ow), column j the col row (ci·KH + kh)·KW + kw. Packed straight into
    /// the GEMM's panels in blocks of positions, so the block being written stays in L1.</summary>
    private readonly unsafe struct TransposedIm2ColPanels(ConvGeometry g, T* x, int n0) : CpuGemm<T>.IPanelSource
    {
        private const int Block = 64;
        private readonly nint _x = (nint)x;

        public void Pack(T* dst, int k0, int depth, int j0, int width, int nr)
        {
            int ohw = g.Ohw;
            for (int p0 = 0; p0 < depth; p0 += Block)
            {
                int rows = Math.Min(Block, depth - p0), position = k0 + p0;
                int sample0 = position / ohw, oh0 = position % ohw / g.Ow, ow0 = position % g.Ow;
                int ci = j0 / (g.Kh * g.Kw), kh = j0 / g.Kw % g.Kh, kw = j0 % g.Kw;
                for (int jj = 0; jj < width; jj++)
                {
                    var (lo, hi) = g.ValidColumns(kw);
                    T* channel = (T*)_x + (long)ci * g.H * g.W - g.Pw + kw;
                    T* column = dst + (long)p0 * nr + jj;
                    int sample = sample0, oh = oh0, ow = ow0;
                    for (int t = 0; t < rows;)
                    {
                        int run = Math.Min(rows - t, g.Ow - ow);
                        int ih = oh * g.Sh - g.Ph + kh;
                        T* d = column + (long)t * nr;
                        int first = Math.Max(ow, lo) - ow, end = Math.Min(ow + run, hi) - ow;
                        if ((uint)ih >= (uint)g.H || first >= end) { first = run; end = run; }
                        int i = 0;
                        for (; i < first; i++) d[i * nr] = T.Zero;
                        T* src = channel + (long)(n0 + sample) * g.InSample + (long)ih * g.W + (ow + i) * g.Sw;
                        for (; i < end; i++, src += g.Sw) d[i * nr] = *src;
                        for (; i < run; i++) d[i * nr] = T.Zero;
                        t += run;
                        ow += run;
                        if (ow == g.Ow) { ow = 0; if (++oh == g.Oh) { oh = 0; sample++; } }
                    }
                    if (++kw == g.Kw) { kw = 0; if (++kh == g.Kh) { kh = 0; ci++; } }
                }
                for (int t = 0; t < rows; t++) new Span<T>(dst + (long)(p0 + t) * nr + width, nr - width).Clear();
            }
        }
    }

    /// <summary>Per-sample sizes of a convolution, flattened for the im2col GEMMs, and the grouping of the batch.</summary>
    private readonly unsafe struct ConvGeometry
    {
        /// <summary>GEMMs at least this wide (columns = samples × OH·OW) when the batch allows.</summary>
        public const int MinColumns = 256;

        public readonly int Batch, Cin, H, W, Cout, Kh, Kw, Sh, Sw, Ph, Pw, Oh, Ow;
        /// <summary>Samples per GEMM, and the number of workers the groups are spread over.</summary>
        public readonly int Group, Workers;

        public ConvGeometry(in Conv2dShape s)
        {
            Batch = s.Batch; Cin = s.InChannels; H = s.InHeight; W = s.InWidth; Cout = s.OutChannels;
            Kh = s.KernelH; Kw = s.KernelW; Sh = s.StrideH; Sw = s.StrideW; Ph = s.PadH; Pw = s.PadW;
            Oh = s.OutHeight; Ow = s.OutWidth;
            int threads = Environment.ProcessorCount;
            Group = Math.Clamp((MinColumns + Ohw - 1) / Ohw, 1, (Batch + threads - 1) / threads);
            Workers = Math.Min((Batch + Group - 1) / Group, threads);
        }

        public int Ohw => Oh * Ow;
        public int Ckk => Cin * Kh * Kw;
        public int InSample => Cin * H * W;
        public int OutSample => Cout * Oh * Ow;
        /// <summary>x (or dx) of a single-sample group is its own col matrix.</summary>
        public bool Direct => Group == 1 && Kh == 1 && Kw == 1 && Sh == 1 && Sw == 1 && Ph == 0 && Pw == 0;

        /// <summary>The output columns [lo, hi) whose input column ow·Sw − Pw + kw lies inside the image.</summary>
        public (int Lo, int Hi) ValidColumns(int kw)
        {
            int first = Pw - kw, last = W - 1 + Pw - kw;
            if (last < 0) return (0, 0);
            int lo = first <= 0 ? 0 : (first + Sw - 1) / Sw;
            int hi = Math.Min(Ow, last / Sw + 1);
            return (Math.Min(lo, hi), hi);
        }

        /// <summary>Runs body(n0, count, col, gathered, worker) for every group of samples [n0, n0+count), in parallel;
        /// each worker owns a col scratch of Ckk × Group·OH·OW (when asked for) and a gathered scratch of Cout × Group·OH·OW.</summary>
        public void ForEachGroup(ColScratch scratch, GroupBody body)
        {
            var g = this;
            int groups = (Batch + Group - 1) / Group;
            Parallel.For(0, Workers, wk =>
            {
                var col = g.Direct || scratch == ColScratch.None ? null : ArrayPool<T>.Shared.Rent(g.Ckk * g.Group * g.Ohw);
                var gathered = g.Group == 1 ? null : ArrayPool<T>.Shared.Rent(g.Cout * g.Group * g.Ohw);
                try
                {
                    fixed (T* colp = col)
                    fixed (T* gatheredp = gathered)
                        for (int gi = wk; gi < groups; gi += g.Workers)
                        {
                            int n0 = gi * g.Group;
                            body(n0, Math.Min(g.Group, g.Batch - n0), (nint)colp, (nint)gatheredp, wk);
                        }
                }
                finally
                {
                    if (col is not null) ArrayPool<T>.Shared.Return(col);
                    if (gathered is not null) ArrayPool<T>.Shared.Return(gathered);
                }
            });
        }

        /// <summary>col[:, s·OH·OW + q] = im2col of sample n0 + s, for the count samples of a group.</summary>
        public T* Im2ColGroup(T* col, T* x, int n0, int count)
        {
            for (int s = 0; s < count; s++) Im2Col(col + s * Ohw, count * Ohw, x + (long)(n0 + s) * InSample, this);
            return col;
        }

        public void Col2ImGroup(T* dx, T* col, int n0, int count)
        {
            for (int s = 0; s < count; s++) Col2Im(dx + (long)(n0 + s) * InSample, col + s * Ohw, count * Ohw, this);
        }

        /// <summary>y[n0 + s, o, q] = out[o, s·OH·OW + q].</summary>
        public void ScatterOutput(T* y, T* output, int n0, int count)
        {
            int cols = count * Ohw;
            for (int s = 0; s < count; s++)
            for (int o = 0; o < Cout; o++)
                new ReadOnlySpan<T>(output + (long)o * cols + s * Ohw, Ohw).CopyTo(new Span<T>(y + (long)(n0 + s) * OutSample + o * Ohw, Ohw));
        }

        /// <summary>gathered[o, s·OH·OW + q] = dy[n0 + s, o, q].</summary>
        public T* GatherOutput(T* gathered, T* dy, int n0, int count)
        {
            int cols = count * Ohw;
            for (int s = 0; s < count; s++)
            for (int o = 0; o < Cout; o++)
                new ReadOnlySpan<T>(dy + (long)(n0 + s) * OutSample + o * Ohw, Ohw).CopyTo(new Span<T>(gathered + (long)o * cols + s * Ohw, Ohw));
            return gathered;
        }
    }

    private static unsafe void Im2Col(T* col, int ld, T* x, in ConvGeometry g)
    {
        for (int ci = 0; ci < g.Cin; ci++)
        for (int kh = 0; kh < g.Kh; kh++)
        for (int kw = 0; kw < g.Kw; kw++)
        {
            T* dst = col + (long)((ci * g.Kh + kh) * g.Kw + kw) * ld;
            T* plane = x + (long)ci * g.H * g.W;
            var (owLo, owHi) = g.ValidColumns(kw);
            for (int oh = 0; oh < g.Oh; oh++)
            {
                int ih = oh * g.Sh - g.Ph + kh;
                var row = new Span<T>(dst + oh * g.Ow, g.Ow);
                if ((uint)ih >= (uint)g.H || owLo >= owHi)
                {
                    row.Clear();
                    continue;
                }
                row[..owLo].Clear();
                row[owHi..].Clear();
                T* src = plane + ih * g.W + owLo * g.Sw - g.Pw + kw;
                if (g.Sw == 1) new ReadOnlySpan<T>(src, owHi - owLo).CopyTo(row[owLo..owHi]);
                else for (int ow = owLo; ow < owHi; ow++, src += g.Sw) row[ow] = *src;
            }
        }
    }

    private static unsafe void Col2Im(T* x, T* col, int ld, in ConvGeometry g)
    {
        new Span<T>(x, g.InSample).Clear();
        for (int ci = 0; ci < g.Cin; ci++)
        for (int kh = 0; kh < g.Kh; kh++)
        for (int kw = 0; kw < g.Kw; kw++)
        {
            T* src = col + (long)((ci * g.Kh + kh) * g.Kw + kw) * ld;
            T* plane = x + (long)ci * g.H * g.W;
            var (owLo, owHi) = g.ValidColumns(kw);
            if (owLo >= owHi) continue;
            for (int oh = 0; oh < g.Oh; oh++)
            {
                int ih = oh * g.Sh - g.Ph + kh;
                if ((uint)ih >= (uint)g.H) continue;
                T* dst = plane + ih * g.W + owLo * g.Sw - g.Pw + kw;
                var row = new ReadOnlySpan<T>(src + oh * g.Ow + owLo, owHi - owLo);
                if (g.Sw == 1) System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<T>(dst, row.Length), new Span<T>(dst, row.Length));
                else for (int i = 0; i < row.Length; i++, dst += g.Sw) *dst += row[i];
            }
        }
    }
}
