// The SimCLR-specific ops on the CPU: row-wise L2 normalization, the NT-Xent loss from raw z, cosine
// similarity, and softmax cross-entropy for linear evaluation. Reductions (norms, dot products,
// log-sum-exp) run in double whatever T is; these ops are small next to the encoder.
// Accumulation rule: dx, dz and dlogits are overwritten.
//
// NT-Xent over z[2N, D] with τ: ẑᵢ = zᵢ / max(‖zᵢ‖, eps), s_ij = ẑᵢ·ẑⱼ/τ, lseᵢ = log Σ_{j≠i} exp s_ij,
// loss = (1/2N) Σᵢ (lseᵢ − s_{i,p(i)}) with p(i) = (i + N) mod 2N. With P_ij = exp(s_ij − lseᵢ) (0 on the
// diagonal) and G_ij = (P_ij − [j = p(i)])/2N, ∂loss/∂ẑᵢ = (1/τ) Σⱼ (G_ij + G_ji) ẑⱼ, which the backward
// then maps through the normalization exactly like L2NormalizeBackward.
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
        var zhat = NormalizedRows(zs, s.Rows, s.Dim, s.Epsilon, ns);
        var shape = s;
        var rowLoss = new double[s.Rows];
        var lseWide = new double[s.Rows];
        Parallel.For(0, s.Rows, i =>
        {
            var sim = new double[shape.Rows];
            SimilarityRow(sim, zhat, i, shape);
            double max = double.NegativeInfinity;
            for (int j = 0; j < shape.Rows; j++) if (j != i) max = Math.Max(max, sim[j]);
            double sum = 0;
            for (int j = 0; j < shape.Rows; j++) if (j != i) sum += Math.Exp(sim[j] - max);
            lseWide[i] = max + Math.Log(sum);
            rowLoss[i] = lseWide[i] - sim[PositiveRow(i, shape.Rows)];
        });
        double total = 0;
        for (int i = 0; i < s.Rows; i++) { total += rowLoss[i]; lse[i] = Cast(lseWide[i]); }
        lossSpan[0] = Cast(total / s.Rows);
    }

    public void NtXentBackward(Tensor<T> dz, Tensor<T> z, Tensor<T> rowLse, Tensor<T> norms, in NtXentShape s, double lossGrad = 1.0)
    {
        const string op = nameof(NtXentBackward);
        CheckNtXent(s, op);
        Need(dz, (long)s.Rows * s.Dim, nameof(dz), op);
        var zs = Need(z, (long)s.Rows * s.Dim, nameof(z), op);
        var lse = Need(rowLse, s.Rows, nameof(rowLse), op);
        var ns = Need(norms, s.Rows, nameof(norms), op);
        int rows = s.Rows, dim = s.Dim;
        double eps = s.Epsilon;
        var zhat = new double[rows * dim];
        var normWide = new double[rows];
        var lseWide = new double[rows];
        for (int i = 0; i < rows; i++)
        {
            normWide[i] = Wide(ns[i]);
            lseWide[i] = Wide(lse[i]);
            double inv = 1.0 / Math.Max(normWide[i], eps);
            for (int c = 0; c < dim; c++) zhat[i * dim + c] = Wide(zs[i * dim + c]) * inv;
        }

        // G_ij = (P_ij − [j = p(i)]) / 2N, built row by row from the saved log-sum-exp.
        var grad = new double[rows * rows];
        var shape = s;
        Parallel.For(0, rows, i =>
        {
            var sim = new double[rows];
            SimilarityRow(sim, zhat, i, shape);
            var gi = grad.AsSpan(i * rows, rows);
            for (int j = 0; j < rows; j++) gi[j] = j == i ? 0 : Math.Exp(sim[j] - lseWide[i]) / rows;
            gi[PositiveRow(i, rows)] -= 1.0 / rows;
        });

        double scale = lossGrad / s.Temperature;
        Parallel.For(0, rows, i =>
        {
            var dzhat = new double[dim];
            for (int j = 0; j < rows; j++)
            {
                double w = grad[i * rows + j] + grad[j * rows + i];
                if (w == 0) continue;
                for (int c = 0; c < dim; c++) dzhat[c] += w * zhat[j * dim + c];
            }
            var dzi = dz.Span.Slice(i * dim, dim);
            var zi = zhat.AsSpan(i * dim, dim);
            if (normWide[i] > eps)
            {
                double dot = 0;
                for (int c = 0; c < dim; c++) dot += zi[c] * dzhat[c];
                double k = scale / normWide[i];
                for (int c = 0; c < dim; c++) dzi[c] = Cast(k * (dzhat[c] - zi[c] * dot));
            }
            else
            {
                for (int c = 0; c < dim; c++) dzi[c] = Cast(scale * dzhat[c] / eps);
            }
        });
    }

    public void CosineSimilarity(Tensor<T> s, Tensor<T> a, Tensor<T> b, int m, int n, int dim)
    {
        const string op = nameof(CosineSimilarity);
        Positive(m, nameof(m), op); Positive(n, nameof(n), op); Positive(dim, nameof(dim), op);
        var ss = Need(s, (long)m * n, nameof(s), op);
        var ahat = NormalizedRows(Need(a, (long)m * dim, nameof(a), op), m, dim, CosineEpsilon, Span<T>.Empty);
        var bhat = NormalizedRows(Need(b, (long)n * dim, nameof(b), op), n, dim, CosineEpsilon, Span<T>.Empty);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0;
            for (int c = 0; c < dim; c++) dot += ahat[i * dim + c] * bhat[j * dim + c];
            ss[i * n + j] = Cast(dot);
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

    private static int PositiveRow(int row, int rows) => (row + rows / 2) % rows;

    private static double Norm(ReadOnlySpan<T> row)
    {
        double sq = 0;
        foreach (var v in row) { double d = Wide(v); sq += d * d; }
        return Math.Sqrt(sq);
    }

    /// <summary>Rows divided by max(norm, eps), in double; the norms go to <paramref name="norms"/> unless it is empty.</summary>
    private static double[] NormalizedRows(ReadOnlySpan<T> x, int rows, int cols, double eps, Span<T> norms)
    {
        var result = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * cols, cols);
            double norm = Norm(row), inv = 1.0 / Math.Max(norm, eps);
            for (int c = 0; c < cols; c++) result[r * cols + c] = Wide(row[c]) * inv;
            if (!norms.IsEmpty) norms[r] = Cast(norm);
        }
        return result;
    }

    private static void SimilarityRow(double[] sim, double[] zhat, int i, in NtXentShape s)
    {
        double invT = 1.0 / s.Temperature;
        for (int j = 0; j < s.Rows; j++)
        {
            double dot = 0;
            for (int c = 0; c < s.Dim; c++) dot += zhat[i * s.Dim + c] * zhat[j * s.Dim + c];
            sim[j] = dot * invT;
        }
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
