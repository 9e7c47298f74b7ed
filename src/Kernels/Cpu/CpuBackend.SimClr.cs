// The SimCLR-specific ops on the CPU: row-wise L2 normalization, the NT-Xent loss from raw z, cosine
// similarity, and softmax cross-entropy for linear evaluation. Reductions (norms, dot products,
// log-sum-exp) run in double whatever T is; these ops are small next to the encoder.
// Accumulation rule: dx, dz and dlogits are overwritten.
//
// NT-Xent over z[2N, D] with τ: ẑᵢ = zᵢ / max(‖zᵢ‖, eps), s_ij = ẑᵢ·ẑⱼ/τ, lseᵢ = log Σ_{j≠i} exp s_ij,
// loss = (1/2N) Σᵢ (lseᵢ − s_{i,p(i)}) with p(i) = (i + N) mod 2N. With P_ij = exp(s_ij − lseᵢ) (0 on the
// diagonal) and G_ij = (P_ij − [j = p(i)])/2N, ∂loss/∂ẑᵢ = (1/τ) Σⱼ (G_ij + G_ji) ẑⱼ, which the backward
// then maps through the normalization exactly like L2NormalizeBackward. In rows-subset mode (NtXentShape) the
// same formulas run for the call's own rows only, against all columns, with p(i) the other view in i's block.
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public void L2NormalizeForward(Tensor<T> y, Tensor<T> norms, Tensor<T> x, in RowsShape s)
    {
        const string op = nameof(L2NormalizeForward);
        CheckRows(s, op);
        var ys = Need(y, (long)s.Rows * s.Cols, nameof(y), op);
        var ns = Need(norms, s.Rows, nameof(norms), op);
        var xs = Need(x, (long)s.Rows * s.Cols, nameof(x), op);
        for (int r = 0; r < s.Rows; r++)
        {
            var row = xs.Slice(r * s.Cols, s.Cols);
            double norm = Norm(row), inv = 1.0 / Math.Max(norm, s.Epsilon);
            var dst = ys.Slice(r * s.Cols, s.Cols);
            for (int c = 0; c < s.Cols; c++) dst[c] = Cast(Wide(row[c]) * inv);
            ns[r] = Cast(norm);
        }
    }

    public void L2NormalizeBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y, Tensor<T> norms, in RowsShape s)
    {
        const string op = nameof(L2NormalizeBackward);
        CheckRows(s, op);
        var dxs = Need(dx, (long)s.Rows * s.Cols, nameof(dx), op);
        var dys = Need(dy, (long)s.Rows * s.Cols, nameof(dy), op);
        var ys = Need(y, (long)s.Rows * s.Cols, nameof(y), op);
        var ns = Need(norms, s.Rows, nameof(norms), op);
        for (int r = 0; r < s.Rows; r++)
            NormalizeBackwardRow(dxs.Slice(r * s.Cols, s.Cols), dys.Slice(r * s.Cols, s.Cols), ys.Slice(r * s.Cols, s.Cols), Wide(ns[r]), s.Epsilon, 1.0);
    }

    /// <summary>dx = scale·∂(x / max(‖x‖, eps))ᵀdy: (dy − y·(y·dy))/‖x‖ above eps, dy/eps below (constant divisor).</summary>
    private static void NormalizeBackwardRow(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<T> y, double norm, double eps, double scale)
    {
        if (norm > eps)
        {
            double dot = 0;
            for (int c = 0; c < dy.Length; c++) dot += Wide(y[c]) * Wide(dy[c]);
            double k = scale / norm;
            for (int c = 0; c < dx.Length; c++) dx[c] = Cast(k * (Wide(dy[c]) - Wide(y[c]) * dot));
        }
        else
        {
            for (int c = 0; c < dx.Length; c++) dx[c] = Cast(scale * Wide(dy[c]) / eps);
        }
    }

    public void NtXentForward(Tensor<T> loss, Tensor<T> rowLse, Tensor<T> norms, Tensor<T> z, in NtXentShape s)
    {
        const string op = nameof(NtXentForward);
        CheckNtXent(s, op);
        var lossSpan = Need(loss, 1, nameof(loss), op);
        var lse = Need(rowLse, s.Rows, nameof(rowLse), op);
        var ns = Need(norms, s.Rows, nameof(norms), op);
        var zs = Need(z, (long)s.Rows * s.Dim, nameof(z), op);
        int rows = s.Rows, first = s.RowStart, count = s.RowCount;
        var zhat = Pool.Rent(rows * s.Dim);
        var lseWide = Pool.Rent(count);
        var rowLoss = Pool.Rent(count);
        try
        {
            NormalizeRows(zs, rows, s.Dim, s.Epsilon, zhat, ns);
            var shape = s;
            Parallel.For(0, count, () => Pool.Rent(rows), (local, _, sim) =>
            {
                int i = first + local;
                SimilarityRow(sim, zhat, i, shape);
                double max = double.NegativeInfinity;
                for (int j = 0; j < rows; j++) if (j != i) max = Math.Max(max, sim[j]);
                double sum = 0;
                for (int j = 0; j < rows; j++) if (j != i) sum += Math.Exp(sim[j] - max);
                lseWide[local] = max + Math.Log(sum);
                rowLoss[local] = lseWide[local] - sim[shape.PositiveOf(i)];
                return sim;
            }, sim => Pool.Return(sim));
            double total = 0;
            for (int local = 0; local < count; local++) { total += rowLoss[local]; lse[first + local] = Cast(lseWide[local]); }
            lossSpan[0] = Cast(total / rows);
        }
        finally
        {
            Pool.Return(zhat); Pool.Return(lseWide); Pool.Return(rowLoss);
        }
    }

    public void NtXentBackward(Tensor<T> dz, Tensor<T> z, Tensor<T> rowLse, Tensor<T> norms, in NtXentShape s, double lossGrad = 1.0)
    {
        const string op = nameof(NtXentBackward);
        CheckNtXent(s, op);
        Need(dz, (long)s.RowCount * s.Dim, nameof(dz), op);
        var zs = Need(z, (long)s.Rows * s.Dim, nameof(z), op);
        var lse = Need(rowLse, s.Rows, nameof(rowLse), op);
        var ns = Need(norms, s.Rows, nameof(norms), op);
        int rows = s.Rows, dim = s.Dim, first = s.RowStart;
        double eps = s.Epsilon, scale = lossGrad / s.Temperature;
        var zhat = Pool.Rent(rows * dim);
        var normWide = Pool.Rent(rows);
        var lseWide = Pool.Rent(rows);
        try
        {
            for (int i = 0; i < rows; i++)
            {
                normWide[i] = Wide(ns[i]);
                lseWide[i] = Wide(lse[i]);
                double inv = 1.0 / Math.Max(normWide[i], eps);
                for (int c = 0; c < dim; c++) zhat[i * dim + c] = Wide(zs[i * dim + c]) * inv;
            }
            var shape = s;
            // ∂loss/∂s_ij and ∂loss/∂s_ji both reach ẑᵢ through the symmetric s_ij: with P from the saved
            // log-sum-exps, the weight of ẑⱼ in ∂loss/∂ẑᵢ is (P_ij + P_ji − 2[j = p(i)]) / (2N·τ), as p is an involution.
            // P_ji needs row j's log-sum-exp, which in rows-subset mode another rank computed: rowLse holds all rows.
            Parallel.For(0, s.RowCount, () => (Sim: Pool.Rent(rows), Grad: Pool.Rent(dim)), (local, _, scratch) =>
            {
                int i = first + local;
                var (sim, dzhat) = scratch;
                SimilarityRow(sim, zhat, i, shape);
                var g = dzhat.AsSpan(0, dim);
                g.Clear();
                int pos = shape.PositiveOf(i);
                for (int j = 0; j < rows; j++)
                {
                    if (j == i) continue;
                    double w = (Math.Exp(sim[j] - lseWide[i]) + Math.Exp(sim[j] - lseWide[j]) - (j == pos ? 2.0 : 0.0)) / rows;
                    TP.MultiplyAdd(zhat.AsSpan(j * dim, dim), w, g, g);
                }
                var zi = zhat.AsSpan(i * dim, dim);
                var dzi = dz.Span.Slice(local * dim, dim);
                if (normWide[i] > eps)
                {
                    double dot = TP.Dot<double>(zi, g);
                    double k = scale / normWide[i];
                    for (int c = 0; c < dim; c++) dzi[c] = Cast(k * (g[c] - zi[c] * dot));
                }
                else
                {
                    for (int c = 0; c < dim; c++) dzi[c] = Cast(scale * g[c] / eps);
                }
                return scratch;
            }, scratch => { Pool.Return(scratch.Sim); Pool.Return(scratch.Grad); });
        }
        finally
        {
            Pool.Return(zhat); Pool.Return(normWide); Pool.Return(lseWide);
        }
    }

    /// <summary>Scratch for the double-precision reductions; rented, so a training step does not allocate.</summary>
    private static System.Buffers.ArrayPool<double> Pool => System.Buffers.ArrayPool<double>.Shared;

    public void CosineSimilarity(Tensor<T> s, Tensor<T> a, Tensor<T> b, int m, int n, int dim)
    {
        const string op = nameof(CosineSimilarity);
        Positive(m, nameof(m), op); Positive(n, nameof(n), op); Positive(dim, nameof(dim), op);
        var ss = Need(s, (long)m * n, nameof(s), op);
        var ahat = Pool.Rent(m * dim);
        var bhat = Pool.Rent(n * dim);
        try
        {
            NormalizeRows(Need(a, (long)m * dim, nameof(a), op), m, dim, CosineEpsilon, ahat, Span<T>.Empty);
            NormalizeRows(Need(b, (long)n * dim, nameof(b), op), n, dim, CosineEpsilon, bhat, Span<T>.Empty);
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                ss[i * n + j] = Cast(TP.Dot<double>(ahat.AsSpan(i * dim, dim), bhat.AsSpan(j * dim, dim)));
        }
        finally
        {
            Pool.Return(ahat); Pool.Return(bhat);
        }
    }

    /// <summary>Rows shorter than this are divided by it instead of their norm (as <see cref="RowsShape"/>'s default).</summary>
    private const double CosineEpsilon = 1e-12;

    public void SoftmaxCrossEntropyForward(Tensor<T> loss, Tensor<T> probs, Tensor<T> logits, Tensor<int> labels, in ClassShape s)
    {
        const string op = nameof(SoftmaxCrossEntropyForward);
        CheckClasses(s, op);
        var lossSpan = Need(loss, 1, nameof(loss), op);
        var ps = Need(probs, (long)s.Batch * s.Classes, nameof(probs), op);
        var ls = Need(logits, (long)s.Batch * s.Classes, nameof(logits), op);
        var ys = CheckLabels(labels, s, op);
        double total = 0;
        for (int r = 0; r < s.Batch; r++)
        {
            var row = ls.Slice(r * s.Classes, s.Classes);
            double max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, Wide(v));
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(Wide(v) - max);
            double lse = max + Math.Log(sum);
            var p = ps.Slice(r * s.Classes, s.Classes);
            for (int c = 0; c < s.Classes; c++) p[c] = Cast(Math.Exp(Wide(row[c]) - lse));
            total += lse - Wide(row[ys[r]]);
        }
        lossSpan[0] = Cast(total / s.Batch);
    }

    public void SoftmaxCrossEntropyBackward(Tensor<T> dlogits, Tensor<T> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0)
    {
        const string op = nameof(SoftmaxCrossEntropyBackward);
        CheckClasses(s, op);
        var ds = Need(dlogits, (long)s.Batch * s.Classes, nameof(dlogits), op);
        var ps = Need(probs, (long)s.Batch * s.Classes, nameof(probs), op);
        var ys = CheckLabels(labels, s, op);
        double k = lossGrad / s.Batch;
        for (int r = 0; r < s.Batch; r++)
        for (int c = 0; c < s.Classes; c++)
            ds[r * s.Classes + c] = Cast(k * (Wide(ps[r * s.Classes + c]) - (c == ys[r] ? 1.0 : 0.0)));
    }

    private static double Norm(ReadOnlySpan<T> row)
    {
        double sq = 0;
        foreach (var v in row) { double d = Wide(v); sq += d * d; }
        return Math.Sqrt(sq);
    }

    /// <summary>Rows divided by max(norm, eps), in double, into <paramref name="result"/>; the norms go to
    /// <paramref name="norms"/> unless it is empty.</summary>
    private static void NormalizeRows(ReadOnlySpan<T> x, int rows, int cols, double eps, double[] result, Span<T> norms)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            double norm = Norm(row), inv = 1.0 / Math.Max(norm, eps);
            for (int c = 0; c < cols; c++) result[r * cols + c] = Wide(row[c]) * inv;
            if (!norms.IsEmpty) norms[r] = Cast(norm);
        }
    }

    /// <summary>sim[j] = ẑᵢ·ẑⱼ/τ for every row j.</summary>
    private static void SimilarityRow(double[] sim, double[] zhat, int i, in NtXentShape s)
    {
        double invT = 1.0 / s.Temperature;
        var zi = zhat.AsSpan(i * s.Dim, s.Dim);
        for (int j = 0; j < s.Rows; j++) sim[j] = TP.Dot<double>(zi, zhat.AsSpan(j * s.Dim, s.Dim)) * invT;
    }

    private static void CheckRows(in RowsShape s, string op)
    {
        Positive(s.Rows, "Rows", op); Positive(s.Cols, "Cols", op);
        if (!(s.Epsilon > 0)) throw new ArgumentException($"{op}: Epsilon must be positive, got {s.Epsilon}", nameof(s));
    }

    private static void CheckNtXent(in NtXentShape s, string op)
    {
        try { s.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"{op}: {e.Message}", nameof(s)); }
        if (!(s.Epsilon > 0)) throw new ArgumentException($"{op}: Epsilon must be positive, got {s.Epsilon}", nameof(s));
    }

    private static void CheckClasses(in ClassShape s, string op)
    {
        Positive(s.Batch, "Batch", op); Positive(s.Classes, "Classes", op);
    }

    private static Span<int> CheckLabels(Tensor<int> labels, in ClassShape s, string op)
    {
        var ys = Need(labels, s.Batch, nameof(labels), op);
        for (int r = 0; r < ys.Length; r++)
            if ((uint)ys[r] >= (uint)s.Classes)
                throw new ArgumentException($"{op}: label {ys[r]} at row {r} is outside [0, {s.Classes})", nameof(labels));
        return ys;
    }
}
