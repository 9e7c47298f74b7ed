// The op-level benchmarks, written once against IBackend<float> so the CPU suite and the GPU kernels
// suite time the same work with the same accounting. Each case allocates its buffers through the
// backend (ops never allocate, so the sum of those buffers IS the op's memory), fills them with
// deterministic Philox data, and declares its compulsory work: the flops a direct implementation
// must do and the bytes it must move at least once.
using SimClr.Kernels;

namespace SimClr.Benchmarks;

/// <summary>One benchmark: a key shared with the PyTorch baselines, and a setup that returns the body to time.</summary>
public sealed record OpCase(string Key, string Group, string Shape, Func<CaseBuffers, CaseBody> Setup);

public sealed record CaseBody(Action Run, Work Work, string? Note = null);

/// <summary>Buffers of one case, allocated through the backend and released together.</summary>
public sealed class CaseBuffers(IBackend<float> backend) : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public IBackend<float> Backend { get; } = backend;
    public long Bytes { get; private set; }

    public Tensor<T> Zeros<T>(Shape shape, Layout layout = Layout.RowMajor) where T : unmanaged
    {
        var storage = Backend.Allocate<T>(shape.Elements);
        _owned.Add(storage);
        Bytes += storage.Bytes;
        return storage.AsTensor(shape, layout);
    }

    /// <summary>Uniform values in [-scale, scale), a pure function of (seed, index).</summary>
    public Tensor<float> Random(Shape shape, ulong seed, float scale = 1f, Layout layout = Layout.RowMajor)
    {
        var t = Zeros<float>(shape, layout);
        var host = new float[shape.Elements];
        HostData.Uniform(host, seed, scale);
        Backend.Upload(t, host);
        return t;
    }

    public Tensor<T> From<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var t = Zeros<T>(new Shape(values.Length));
        Backend.Upload(t, values);
        return t;
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}

public static class HostData
{
    /// <summary>Uniform in [-scale, scale): element i is a pure function of (seed, i), filled in parallel
    /// blocks because the GPU suites fill hundreds of millions of elements.</summary>
    public static void Uniform(float[] dst, ulong seed, float scale)
    {
        const int Block = 1 << 16;
        Parallel.For(0, (dst.Length + Block - 1) / Block, blk =>
        {
            int end = Math.Min(dst.Length, (blk + 1) * Block);
            for (int i = blk * Block; i < end; i += 4)
            {
                var b = Philox.Block(seed, (uint)i, 0, 0, 0);
                dst[i] = scale * (2 * Philox.ToUniformFloat(b.X) - 1);
                if (i + 1 < end) dst[i + 1] = scale * (2 * Philox.ToUniformFloat(b.Y) - 1);
                if (i + 2 < end) dst[i + 2] = scale * (2 * Philox.ToUniformFloat(b.Z) - 1);
                if (i + 3 < end) dst[i + 3] = scale * (2 * Philox.ToUniformFloat(b.W) - 1);
            }
        });
    }

    public static byte[] Pixels(long count, ulong seed)
    {
        var dst = new byte[count];
        for (long i = 0; i < count; i += 4)
        {
            var b = Philox.Block(seed, (uint)i, (uint)(i >> 32), 1, 0);
            for (int k = 0; k < 4 && i + k < count; k++)
                dst[i + k] = (byte)((k switch { 0 => b.X, 1 => b.Y, 2 => b.Z, _ => b.W }) >> 24);
        }
        return dst;
    }
}

public static class OpCases
{
    private const double F = sizeof(float);

    public static OpCase Gemm(string label, int m, int n, int k, Transpose ta = Transpose.None, Transpose tb = Transpose.None) =>
        new($"gemm.{label}", "gemm", $"M={m} N={n} K={k} {(ta == Transpose.None ? "N" : "T")}{(tb == Transpose.None ? "N" : "T")}", buf =>
        {
            var a = buf.Random(ta == Transpose.None ? new Shape(m, k) : new Shape(k, m), 1);
            var b = buf.Random(tb == Transpose.None ? new Shape(k, n) : new Shape(n, k), 2);
            var c = buf.Zeros<float>(new Shape(m, n));
            var s = new GemmShape(m, n, k, ta, tb);
            return new CaseBody(() => buf.Backend.Gemm(c, a, b, s), new Work(s.Flops, F * ((long)m * k + (long)k * n + (long)m * n)));
        });

    public enum ConvPass { Forward, BackwardData, BackwardFilter }

    public static OpCase Conv(string label, Conv2dShape s, ConvPass pass)
    {
        s.Validate();
        string passName = pass switch { ConvPass.Forward => "fwd", ConvPass.BackwardData => "bwd_data", _ => "bwd_filter" };
        string shape = $"N={s.Batch} {s.InChannels}→{s.OutChannels} {s.InHeight}×{s.InWidth} k{s.KernelH} s{s.StrideH} p{s.PadH}";
        return new($"conv.{label}.{passName}", "conv", shape, buf =>
        {
            var x = buf.Random(new Shape(s.Batch, s.InChannels, s.InHeight, s.InWidth), 3, 1f, Layout.NCHW);
            var w = buf.Random(new Shape(s.OutChannels, s.InChannels, s.KernelH, s.KernelW), 4, 0.1f, Layout.NCHW);
            var y = buf.Random(new Shape(s.Batch, s.OutChannels, s.OutHeight, s.OutWidth), 5, 1f, Layout.NCHW);
            var be = buf.Backend;
            // Bytes: every operand once; the filter gradient accumulates, so it is read and written.
            double bytes = F * (s.InputElements + s.WeightElements + s.OutputElements + (pass == ConvPass.BackwardFilter ? s.WeightElements : 0));
            Action run = pass switch
            {
                ConvPass.Forward => () => be.Conv2dForward(y, x, w, s),
                ConvPass.BackwardData => () => be.Conv2dBackwardData(x, y, w, s),
                _ => () => be.Conv2dBackwardFilter(w, y, x, s),
            };
            return new CaseBody(run, new Work(s.Flops, bytes));
        });
    }

    /// <summary>Fused NT-Xent forward then backward. Flops: the similarity matrix in the forward (2R²d),
    /// again in the backward's recomputation (2R²d) and the gradient product (2R²d).</summary>
    public static OpCase NtXent(int rows, int dim, double temperature = 0.5) =>
        new($"ntxent.fwdbwd.rows{rows}.d{dim}", "ntxent", $"2N={rows} d={dim} τ={temperature}", buf =>
        {
            var s = new NtXentShape(rows, dim, temperature);
            s.Validate();
            var z = buf.Random(new Shape(rows, dim), 6);
            var dz = buf.Zeros<float>(new Shape(rows, dim));
            var loss = buf.Zeros<float>(new Shape(1));
            var lse = buf.Zeros<float>(new Shape(rows));
            var norms = buf.Zeros<float>(new Shape(rows));
            var be = buf.Backend;
            double r = rows;
            return new CaseBody(() =>
            {
                be.NtXentForward(loss, lse, norms, z, s);
                be.NtXentBackward(dz, z, lse, norms, s);
            }, new Work(6 * r * r * dim, F * (3.0 * rows * dim + 4.0 * rows), rows, "rows"),
                "flops 6R²d: similarities in the forward, recomputed in the backward, and the gradient product");
        });

    public static OpCase NtXentForward(int rows, int dim, double temperature = 0.5) =>
        new($"ntxent.fwd.rows{rows}.d{dim}", "ntxent", $"2N={rows} d={dim} τ={temperature}", buf =>
        {
            var s = new NtXentShape(rows, dim, temperature);
            s.Validate();
            var z = buf.Random(new Shape(rows, dim), 6);
            var loss = buf.Zeros<float>(new Shape(1));
            var lse = buf.Zeros<float>(new Shape(rows));
            var norms = buf.Zeros<float>(new Shape(rows));
            var be = buf.Backend;
            double r = rows;
            return new CaseBody(() => be.NtXentForward(loss, lse, norms, z, s), new Work(2 * r * r * dim, F * (1.0 * rows * dim + 2.0 * rows), rows, "rows"));
        });

    public static OpCase Cosine(int m, int n, int dim) =>
        new($"cosine.m{m}.n{n}.d{dim}", "cosine", $"{m}×{n}, d={dim}", buf =>
        {
            var a = buf.Random(new Shape(m, dim), 7);
            var b = buf.Random(new Shape(n, dim), 8);
            var s = buf.Zeros<float>(new Shape(m, n));
            var be = buf.Backend;
            return new CaseBody(() => be.CosineSimilarity(s, a, b, m, n, dim),
                new Work(2.0 * m * n * dim, F * ((double)m * dim + (double)n * dim + (double)m * n)));
        });

    /// <summary>LARS over a model's parameter segments. Bytes: the norm pass reads w and g, the update
    /// reads w, g, v and writes w, v: 7 floats per parameter.</summary>
    public static OpCase Lars(string model, IReadOnlyList<ParamSegment> segments) =>
        new($"lars.{model}", "lars", $"{segments.Count} tensors, {Total(segments) / 1e6:F2} M params", buf =>
        {
            long p = Total(segments);
            // Segments may start on aligned offsets with gaps between them: the buffers span the last end.
            int flat = checked((int)segments.Max(s => s.Offset + s.Length));
            var param = buf.Random(new Shape(flat), 9, 0.1f);
            var mom = buf.Zeros<float>(new Shape(flat));
            var grad = buf.Random(new Shape(flat), 10, 0.01f);
            var segs = buf.From<ParamSegment>(segments.ToArray());
            var scratch = buf.Zeros<float>(new Shape(2 * segments.Count));
            var h = new LarsHyper(LearningRate: 0.3);
            var be = buf.Backend;
            return new CaseBody(() => be.LarsUpdate(param, mom, grad, segs, scratch, h), new Work(0, 7 * F * p, p, "params"),
                "bytes: 7 floats per parameter (norms read w, g; the update reads w, g, v and writes w, v)");
        });

    public enum Elementwise { Fill, Copy, Scale, Axpy, Add, ReluForward, ReluBackward }

    public static OpCase ElementwiseOp(Elementwise op, int n) =>
        new($"elementwise.{op.ToString().ToLowerInvariant()}.n{n}", "elementwise", $"{n / 1048576.0:G3} Mi floats", buf =>
        {
            var x = buf.Random(new Shape(n), 11);
            var y = buf.Random(new Shape(n), 12);
            var z = buf.Random(new Shape(n), 13);
            var be = buf.Backend;
            (Action run, int floatsMoved) = op switch
            {
                Elementwise.Fill => ((Action)(() => be.Fill(x, 0.5)), 1),
                Elementwise.Copy => (() => be.Copy(y, x), 2),
                Elementwise.Scale => (() => be.Scale(x, 1.0), 2),
                Elementwise.Axpy => (() => be.Axpy(y, 1e-3, x), 3),
                Elementwise.Add => (() => be.Add(z, x, y), 3),
                Elementwise.ReluForward => (() => be.ReluForward(y, x), 2),
                _ => (() => be.ReluBackward(z, x, y), 3),
            };
            return new CaseBody(run, new Work(0, F * floatsMoved * (double)n, n, "elems"));
        });

    /// <summary>Two-view augmentation input: <paramref name="batch"/> distinct images of a resident uint8
    /// HWC set, one view per call. Bytes: the float NCHW output plus each source image counted whole
    /// (an upper bound on what a random crop reads).</summary>
    public static OpCase Augment(string label, int batch, int inSize, AugmentSpec spec) =>
        new($"augment.{label}.b{batch}.{spec.OutHeight}x{spec.OutWidth}", "augment",
            $"{batch} × {inSize}×{inSize}×3 → 3×{spec.OutHeight}×{spec.OutWidth}", buf =>
        {
            spec.Validate();
            var set = new ImageSetShape(batch, inSize, inSize, 3);
            var images = buf.Zeros<byte>(new Shape(batch, inSize, inSize, 3));
            buf.Backend.Upload(images, HostData.Pixels(set.Elements, 14));
            var order = new PhiloxStream(15).Permutation(batch);
            var indices = buf.From<int>(order);
            var views = buf.Zeros<float>(new Shape(batch, 3, spec.OutHeight, spec.OutWidth), Layout.NCHW);
            var be = buf.Backend;
            int epoch = 0;
            return new CaseBody(() => be.AugmentViews(views, images, indices, set, spec, new AugmentKey(42, epoch++, 0)),
                new Work(0, (double)set.Elements + F * batch * 3.0 * spec.OutHeight * spec.OutWidth, batch, "images"),
                "bytes: each uint8 source image whole (an upper bound on what a crop reads) + the float output");
        });

    private static long Total(IReadOnlyList<ParamSegment> segments) => segments.Sum(s => s.Length);
}
