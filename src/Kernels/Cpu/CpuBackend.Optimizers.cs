// Optimizers over the flat parameter buffer on the CPU, one pass per segment of the
// Tensor<ParamSegment> table (param, momentum and grad share its layout). LARS follows SimCLR's
// TensorFlow reference: g' = g + wd·w unless the segment has NoWeightDecay; trust = η‖w‖/‖g'‖ when both
// norms are positive, else 1, and 1 for NoAdaptation; v = m·v + lr·trust·g'; w −= v. Norms and the
// per-element arithmetic run in double whatever T is. Segments run in parallel: they must not overlap.
namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public void LarsUpdate(Tensor<T> param, Tensor<T> momentum, Tensor<T> grad, Tensor<ParamSegment> segments, Tensor<T> normScratch, in LarsHyper h)
    {
        const string op = nameof(LarsUpdate);
        var table = CheckSegments(param, momentum, grad, segments, op).ToArray();
        Need(normScratch, 2L * table.Length, nameof(normScratch), op);
        if (!(h.LearningRate >= 0) || !double.IsFinite(h.LearningRate)) throw new ArgumentException($"{op}: learning rate must be finite and ≥ 0, got {h.LearningRate}", nameof(h));
        var hyper = h;
        Parallel.For(0, table.Length, k =>
        {
            var seg = table[k];
            var w = param.Span.Slice((int)seg.Offset, (int)seg.Length);
            var v = momentum.Span.Slice((int)seg.Offset, (int)seg.Length);
            var g = grad.Span.Slice((int)seg.Offset, (int)seg.Length);
            double wd = seg.Flags.HasFlag(SegmentFlags.NoWeightDecay) ? 0.0 : hyper.WeightDecay;
            double wSq = 0, gSq = 0;
            for (int i = 0; i < w.Length; i++)
            {
                double wi = Wide(w[i]), gi = Wide(g[i]) + wd * wi;
                wSq += wi * wi;
                gSq += gi * gi;
            }
            double wNorm = Math.Sqrt(wSq), gNorm = Math.Sqrt(gSq);
            double trust = seg.Flags.HasFlag(SegmentFlags.NoAdaptation) || !(wNorm > 0 && gNorm > 0)
                ? 1.0 : hyper.TrustCoefficient * wNorm / gNorm;
            double step = hyper.LearningRate * trust;
            for (int i = 0; i < w.Length; i++)
            {
                double wi = Wide(w[i]), gi = Wide(g[i]) + wd * wi;
                double vi = hyper.Momentum * Wide(v[i]) + step * gi;
                v[i] = Cast(vi);
                w[i] = Cast(wi - vi);
            }
            normScratch.Span[2 * k] = Cast(wNorm);
            normScratch.Span[2 * k + 1] = Cast(gNorm);
        });
    }

    public void SgdMomentumUpdate(Tensor<T> param, Tensor<T> momentum, Tensor<T> grad, Tensor<ParamSegment> segments, in SgdHyper h)
    {
        const string op = nameof(SgdMomentumUpdate);
        var table = CheckSegments(param, momentum, grad, segments, op).ToArray();
        if (!(h.LearningRate >= 0) || !double.IsFinite(h.LearningRate)) throw new ArgumentException($"{op}: learning rate must be finite and ≥ 0, got {h.LearningRate}", nameof(h));
        var hyper = h;
        Parallel.For(0, table.Length, k =>
        {
            var seg = table[k];
            var w = param.Span.Slice((int)seg.Offset, (int)seg.Length);
            var v = momentum.Span.Slice((int)seg.Offset, (int)seg.Length);
            var g = grad.Span.Slice((int)seg.Offset, (int)seg.Length);
            double wd = seg.Flags.HasFlag(SegmentFlags.NoWeightDecay) ? 0.0 : hyper.WeightDecay;
            for (int i = 0; i < w.Length; i++)
            {
                double wi = Wide(w[i]), gi = Wide(g[i]) + wd * wi;
                double vi = hyper.Momentum * Wide(v[i]) + gi;
                v[i] = Cast(vi);
                w[i] = Cast(hyper.Kind == MomentumKind.Nesterov ? wi - hyper.LearningRate * (gi + hyper.Momentum * vi) : wi - hyper.LearningRate * vi);
            }
        });
    }

    /// <summary>Checks that param, momentum and grad share one length and that every segment lies inside it
    /// without overlapping another (the update runs segments in parallel).</summary>
    private static Span<ParamSegment> CheckSegments(Tensor<T> param, Tensor<T> momentum, Tensor<T> grad, Tensor<ParamSegment> segments, string op)
    {
        long length = HostSpan(param, nameof(param)).Length;
        Need(momentum, length, nameof(momentum), op);
        Need(grad, length, nameof(grad), op);
        var table = HostSpan(segments, nameof(segments));
        var order = new (long Offset, long End, int Index)[table.Length];
        for (int k = 0; k < table.Length; k++)
        {
            var seg = table[k];
            if (seg.Offset < 0 || seg.Length < 0 || seg.Offset + seg.Length > length)
                throw new ArgumentException($"{op}: segment {k} [{seg.Offset}, {seg.Offset + seg.Length}) lies outside the parameter buffer of {length}", nameof(segments));
            order[k] = (seg.Offset, seg.Offset + seg.Length, k);
        }
        Array.Sort(order);
        for (int k = 1; k < order.Length; k++)
            if (order[k].Offset < order[k - 1].End && order[k].End > order[k].Offset && order[k - 1].End > order[k - 1].Offset)
                throw new ArgumentException($"{op}: segments {order[k - 1].Index} and {order[k].Index} overlap", nameof(segments));
        return table;
    }
}
