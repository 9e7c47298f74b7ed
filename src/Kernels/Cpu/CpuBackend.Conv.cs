// NCHW convolution on the CPU: im2col + GEMM (any kernel, stride and padding; no groups or dilation).
// For one sample, col[(ci·KH+kh)·KW+kw, oh·OW+ow] = x[ci, oh·sh−ph+kh, ow·sw−pw+kw] (0 outside), so
//   forward          y[Cout, OH·OW]  = W[Cout, Cin·KH·KW] · col
//   backward-data    dcol            = Wᵀ · dy, then col2im scatters dcol into dx (overwritten)
//   backward-filter  dW             += dy · colᵀ
// The work is spread over the batch; a 1×1, stride-1, unpadded kernel uses x itself as col.
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
        ForEachSample(s.Batch, g, (n, col) =>
        {
            T* xn = (T*)xp + n * g.InSample;
            T* src = g.IsPointwise ? xn : Im2Col((T*)col, xn, g);
            CpuGemm<T>.Run(g.Cout, g.Ohw, g.Ckk, T.One, (T*)wp, g.Ckk, Transpose.None, src, g.Ohw, Transpose.None,
                T.Zero, (T*)yp + n * g.OutSample, g.Ohw, GemmThreading.Serial);
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
        ForEachSample(s.Batch, g, (n, col) =>
        {
            T* dxn = (T*)dxp + n * g.InSample;
            T* dst = g.IsPointwise ? dxn : (T*)col;
            CpuGemm<T>.Run(g.Ckk, g.Ohw, g.Cout, T.One, (T*)wp, g.Ckk, Transpose.Transposed, (T*)dyp + n * g.OutSample, g.Ohw, Transpose.None,
                T.Zero, dst, g.Ohw, GemmThreading.Serial);
            if (!g.IsPointwise) Col2Im(dxn, (T*)col, g);
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
        int batch = s.Batch;
        // Each worker accumulates its share of the batch into a private partial dW; the partials are
        // then added to dw in a fixed order, so the result does not depend on scheduling.
        int workers = Math.Min(s.Batch, Environment.ProcessorCount);
        int weights = (int)s.WeightElements;
        var partials = ArrayPool<T>.Shared.Rent(workers * weights);
        try
        {
            fixed (T* pp = partials)
            {
                nint partialp = (nint)pp;
                Parallel.For(0, workers, wk =>
                {
                    T* acc = (T*)partialp + (long)wk * weights;
                    new Span<T>(acc, weights).Clear();
                    var colArray = g.IsPointwise ? null : ArrayPool<T>.Shared.Rent(g.ColElements);
                    try
                    {
                        fixed (T* col = colArray)
                        {
                            for (int n = wk; n < batch; n += workers)
                            {
                                T* xn = (T*)xp + n * g.InSample;
                                T* src = g.IsPointwise ? xn : Im2Col(col, xn, g);
                                CpuGemm<T>.Run(g.Cout, g.Ckk, g.Ohw, T.One, (T*)dyp + n * g.OutSample, g.Ohw, Transpose.None, src, g.Ohw, Transpose.Transposed,
                                    T.One, acc, g.Ckk, GemmThreading.Serial);
                            }
                        }
                    }
                    finally
                    {
                        if (colArray is not null) ArrayPool<T>.Shared.Return(colArray);
                    }
                });
            }
            for (int wk = 0; wk < workers; wk++)
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
        if (s.InputElements > int.MaxValue || s.OutputElements > int.MaxValue || (long)s.InChannels * s.KernelH * s.KernelW * s.OutHeight * s.OutWidth > int.MaxValue)
            throw new ArgumentException($"{op}: {s} is too large for the CPU backend (2^31 elements per buffer)", nameof(s));
    }

    /// <summary>Per-sample sizes of a convolution, flattened for the im2col GEMMs.</summary>
    private readonly struct ConvGeometry(in Conv2dShape s)
    {
        public readonly int Cin = s.InChannels, H = s.InHeight, W = s.InWidth, Cout = s.OutChannels;
        public readonly int Kh = s.KernelH, Kw = s.KernelW, Sh = s.StrideH, Sw = s.StrideW, Ph = s.PadH, Pw = s.PadW;
        public readonly int Oh = s.OutHeight, Ow = s.OutWidth;
        public int Ohw => Oh * Ow;
        public int Ckk => Cin * Kh * Kw;
        public int InSample => Cin * H * W;
        public int OutSample => Cout * Oh * Ow;
        public int ColElements => Ckk * Ohw;
        public bool IsPointwise => Kh == 1 && Kw == 1 && Sh == 1 && Sw == 1 && Ph == 0 && Pw == 0;

        /// <summary>The output columns [lo, hi) whose input column ow·Sw − Pw + kw lies inside the image.</summary>
        public (int Lo, int Hi) ValidColumns(int kw)
        {
            int first = Pw - kw, last = W - 1 + Pw - kw;
            if (last < 0) return (0, 0);
            int lo = first <= 0 ? 0 : (first + Sw - 1) / Sw;
            int hi = Math.Min(Ow, last / Sw + 1);
            return (Math.Min(lo, hi), hi);
        }
    }

    /// <summary>Runs body(n, col) for every sample n, in parallel, each worker with its own col scratch.</summary>
    private static unsafe void ForEachSample(int batch, ConvGeometry g, Action<int, nint> body)
    {
        int workers = Math.Min(batch, Environment.ProcessorCount);
        Parallel.For(0, workers, wk =>
        {
            var colArray = g.IsPointwise ? null : ArrayPool<T>.Shared.Rent(g.ColElements);
            try
            {
                fixed (T* col = colArray)
                    for (int n = wk; n < batch; n += workers) body(n, (nint)col);
            }
            finally
            {
                if (colArray is not null) ArrayPool<T>.Shared.Return(colArray);
            }
        });
    }

    private static unsafe T* Im2Col(T* col, T* x, in ConvGeometry g)
    {
        int ohw = g.Ohw;
        for (int ci = 0; ci < g.Cin; ci++)
        for (int kh = 0; kh < g.Kh; kh++)
        for (int kw = 0; kw < g.Kw; kw++)
        {
            T* dst = col + (long)((ci * g.Kh + kh) * g.Kw + kw) * ohw;
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
        return col;
    }

    private static unsafe void Col2Im(T* x, T* col, in ConvGeometry g)
    {
        new Span<T>(x, g.InSample).Clear();
        int ohw = g.Ohw;
        for (int ci = 0; ci < g.Cin; ci++)
        for (int kh = 0; kh < g.Kh; kh++)
        for (int kw = 0; kw < g.Kw; kw++)
        {
            T* src = col + (long)((ci * g.Kh + kh) * g.Kw + kw) * ohw;
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
