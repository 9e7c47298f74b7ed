// Pooling on the CPU, NCHW: max pooling (square window, stride, zero-free padding: padded positions
// are skipped, never taken as a maximum) and global average pooling. In max-pool backward each dy goes
// to the FIRST maximum of its window in row-major scan order, recomputed from x. Accumulation rule:
// dx is overwritten (overlapping windows add into the freshly cleared dx).
namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public void MaxPoolForward(Tensor<T> y, Tensor<T> x, in PoolShape s)
    {
        const string op = nameof(MaxPoolForward);
        CheckPool(s, op);
        Need(y, (long)s.Batch * s.Channels * s.OutHeight * s.OutWidth, nameof(y), op);
        Need(x, (long)s.Batch * s.Channels * s.InHeight * s.InWidth, nameof(x), op);
        var shape = s;
        Parallel.For(0, s.Batch * s.Channels, plane =>
        {
            var xs = x.Span.Slice(plane * shape.InHeight * shape.InWidth, shape.InHeight * shape.InWidth);
            var ys = y.Span.Slice(plane * shape.OutHeight * shape.OutWidth, shape.OutHeight * shape.OutWidth);
            for (int oh = 0; oh < shape.OutHeight; oh++)
            for (int ow = 0; ow < shape.OutWidth; ow++)
                ys[oh * shape.OutWidth + ow] = xs[ArgMax(xs, shape, oh, ow)];
        });
    }

    public void MaxPoolBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y, Tensor<T> x, in PoolShape s)
    {
        const string op = nameof(MaxPoolBackward);
        CheckPool(s, op);
        long outElements = (long)s.Batch * s.Channels * s.OutHeight * s.OutWidth, inElements = (long)s.Batch * s.Channels * s.InHeight * s.InWidth;
        Need(dx, inElements, nameof(dx), op);
        Need(dy, outElements, nameof(dy), op);
        Need(y, outElements, nameof(y), op);
        Need(x, inElements, nameof(x), op);
        var shape = s;
        Parallel.For(0, s.Batch * s.Channels, plane =>
        {
            int inPlane = shape.InHeight * shape.InWidth, outPlane = shape.OutHeight * shape.OutWidth;
            var xs = x.Span.Slice(plane * inPlane, inPlane);
            var dxs = dx.Span.Slice(plane * inPlane, inPlane);
            var dys = dy.Span.Slice(plane * outPlane, outPlane);
            dxs.Clear();
            for (int oh = 0; oh < shape.OutHeight; oh++)
            for (int ow = 0; ow < shape.OutWidth; ow++)
                dxs[ArgMax(xs, shape, oh, ow)] += dys[oh * shape.OutWidth + ow];
        });
    }

    /// <summary>Index in the plane of the first maximum of window (oh, ow), scanning rows then columns.</summary>
    private static int ArgMax(ReadOnlySpan<T> plane, in PoolShape s, int oh, int ow)
    {
        int h0 = oh * s.Stride - s.Pad, w0 = ow * s.Stride - s.Pad;
        int best = -1;
        T bestValue = T.Zero;
        for (int ih = Math.Max(h0, 0); ih < Math.Min(h0 + s.Window, s.InHeight); ih++)
        for (int iw = Math.Max(w0, 0); iw < Math.Min(w0 + s.Window, s.InWidth); iw++)
        {
            int i = ih * s.InWidth + iw;
            if (best < 0 || plane[i] > bestValue) { best = i; bestValue = plane[i]; }
        }
        return best;
    }

    public void GlobalAvgPoolForward(Tensor<T> y, Tensor<T> x, int batch, int channels, int spatial)
    {
        const string op = nameof(GlobalAvgPoolForward);
        Positive(batch, nameof(batch), op); Positive(channels, nameof(channels), op); Positive(spatial, nameof(spatial), op);
        var ys = Need(y, (long)batch * channels, nameof(y), op);
        var xs = Need(x, (long)batch * channels * spatial, nameof(x), op);
        for (int i = 0; i < batch * channels; i++)
            ys[i] = Cast(Wide(System.Numerics.Tensors.TensorPrimitives.Sum<T>(xs.Slice(i * spatial, spatial))) / spatial);
    }

    public void GlobalAvgPoolBackward(Tensor<T> dx, Tensor<T> dy, int batch, int channels, int spatial)
    {
        const string op = nameof(GlobalAvgPoolBackward);
        Positive(batch, nameof(batch), op); Positive(channels, nameof(channels), op); Positive(spatial, nameof(spatial), op);
        var dxs = Need(dx, (long)batch * channels * spatial, nameof(dx), op);
        var dys = Need(dy, (long)batch * channels, nameof(dy), op);
        for (int i = 0; i < batch * channels; i++)
            dxs.Slice(i * spatial, spatial).Fill(Cast(Wide(dys[i]) / spatial));
    }

    private static void CheckPool(in PoolShape s, string op)
    {
        Positive(s.Batch, "Batch", op); Positive(s.Channels, "Channels", op); Positive(s.InHeight, "InHeight", op); Positive(s.InWidth, "InWidth", op);
        Positive(s.Window, "Window", op); Positive(s.Stride, "Stride", op);
        // As in PyTorch: padding at most half the window, so every window holds at least one real element.
        if (s.Pad < 0 || 2 * s.Pad > s.Window) throw new ArgumentException($"{op}: Pad must lie in [0, Window/2], got {s.Pad} for window {s.Window}", nameof(s));
        if (s.OutHeight <= 0 || s.OutWidth <= 0) throw new ArgumentException($"{op}: {s} has an empty output", nameof(s));
        if ((long)s.Batch * s.Channels * s.InHeight * s.InWidth > int.MaxValue) throw new ArgumentException($"{op}: {s} is too large for the CPU backend", nameof(s));
    }
}
