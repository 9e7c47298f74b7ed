// embedding.png: encoder features projected to 2-D and coloured by class, panels side by side: PCA (the top two
// principal components, exact), t-SNE (van der Maaten & Hinton 2008, exact O(N²) gradient; no Barnes-Hut), and,
// when labelled training features are given, the two leading Fisher linear discriminants fit on those (what a
// linear classifier can separate; unsupervised projections of a weak encoder are dominated by nuisances such
// as the background, the discriminants are not). Each panel draws at most MaxPoints test points, a
// class-balanced subset drawn from a fixed seed, so a plot costs a few seconds of CPU at most (exact t-SNE of
// 1,000 points: about 3 s of CPU) and the same features always give the same picture.
// PCA: features are centred, then the top k = min(50, D, N) components come from subspace iteration on the
// covariance (exact when k = D), finished by a Jacobi eigen-decomposition of the k×k projected covariance.
// t-SNE runs on those k components: perplexity 30 (or (N−1)/3 when smaller) set per point by bisection on the
// Gaussian precision, symmetrized P, Student-t Q; 750 iterations of gradient descent with the original paper's
// optimizer: learning rate 200, momentum 0.5 then 0.8 after 250 iterations, early exaggeration 12 for the first
// 250, per-coordinate gains (+0.2 / ×0.8, floor 0.01), started from the PCA scores scaled to std 1e-4.
// Rows are processed in parallel but each row's sums run in a fixed order, so the result is deterministic.
// The PNG replaces the last atomically (Io/AtomicFile), like every other plot.
using ScottPlot;
using SimClr.Kernels;
using SimClr.Training.Io;

namespace SimClr.Training.Runs;

public static class EmbeddingPlot
{
    public const int MaxPoints = 1000;
    /// <summary>Training rows the discriminant panel is fit on at most.</summary>
    public const int MaxFitPoints = 3000;
    private const int Iterations = 750, ExaggerationIterations = 250, MaxComponents = 50, MaxLegendClasses = 20;
    private const double Perplexity = 30, LearningRate = 200, Exaggeration = 12;

    /// <summary>Writes the picture of <paramref name="features"/> ([N, D] row-major, D = length / N) with
    /// <paramref name="labels"/> (−1: unlabeled) named by <paramref name="classNames"/>: PCA and t-SNE panels, and a
    /// third with the two leading linear discriminants when labelled training features are given (fit on those, so
    /// it shows what a linear classifier can separate without fitting the test points it draws).</summary>
    public static void Write(string path, float[] features, int[] labels, IReadOnlyList<string> classNames, string title = "encoder features h",
        float[]? trainFeatures = null, int[]? trainLabels = null)
    {
        var (x, y) = Rows(features, labels, nameof(features));
        var scores = Pca(x, Math.Min(MaxComponents, Math.Min(x.GetLength(1), y.Length)));
        var tsne = Tsne(scores);
        double[,]? lda = null;
        int fitted = 0;
        if (trainFeatures is not null && trainLabels is not null)
        {
            var (tx, ty) = Rows(trainFeatures, trainLabels, nameof(trainFeatures), MaxFitPoints);
            if (tx.GetLength(1) != x.GetLength(1)) throw new ArgumentException($"train features have {tx.GetLength(1)} dims, test {x.GetLength(1)}", nameof(trainFeatures));
            if (ty.Distinct().Count(l => l >= 0) >= 3)
            {
                lda = Lda(tx, ty, x);
                fitted = ty.Length;
            }
        }

        var multiplot = new Multiplot { Layout = new ScottPlot.MultiplotLayouts.Columns() };
        multiplot.AddPlots(lda is null ? 2 : 3);
        Panel(multiplot.GetPlot(0), $"PCA ({y.Length} test images)", "PC 1", "PC 2", scores, y, classNames, legend: false);
        Panel(multiplot.GetPlot(1), $"t-SNE (perplexity {PerplexityFor(y.Length):G3})", "", "", tsne, y, classNames, legend: lda is null);
        if (lda is not null) Panel(multiplot.GetPlot(2), $"linear discriminants (fit on {fitted} train images)", "LD 1", "LD 2", lda, y, classNames, legend: true);
        multiplot.GetPlot(0).Title($"{title}: PCA ({y.Length} test images)");
        using var image = multiplot.Render(lda is null ? 1500 : 2200, 650);
        AtomicFile.Write(path, image.GetImageBytes(ImageFormat.Png));
    }

    /// <summary>At most <paramref name="max"/> rows of a [N, D] feature array, class-balanced, as doubles.</summary>
    private static (double[,] X, int[] Y) Rows(float[] features, int[] labels, string name, int max = MaxPoints)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length < 3 || features.Length % labels.Length != 0)
            throw new ArgumentException($"{features.Length} feature values for {labels.Length} labels: need [N ≥ 3, D] rows", name);
        int dim = features.Length / labels.Length;
        var rows = Subset(labels, max);
        var x = new double[rows.Length, dim];
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < dim; j++) x[i, j] = features[(long)rows[i] * dim + j];
        return (x, rows.Select(r => labels[r]).ToArray());
    }

    private static void Panel(Plot plot, string title, string xLabel, string yLabel, double[,] points, int[] labels, IReadOnlyList<string> names, bool legend)
    {
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        IPalette palette = names.Count <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Category20();
        foreach (int c in labels.Distinct().Order())
        {
            var idx = Enumerable.Range(0, labels.Length).Where(i => labels[i] == c).ToArray();
            var s = plot.Add.ScatterPoints(idx.Select(i => points[i, 0]).ToArray(), idx.Select(i => points[i, 1]).ToArray());
            s.MarkerSize = labels.Length > 500 ? 4 : 6;
            s.Color = c < 0 ? Colors.Gray : palette.GetColor(c);
            if (legend && (c < 0 || c < MaxLegendClasses))
                s.LegendText = c < 0 ? "unlabeled" : c < names.Count ? names[c] : $"class {c}";
        }
        if (legend) plot.ShowLegend(Edge.Right);
    }

    /// <summary>At most <paramref name="max"/> row indices, taken class by class in a seeded order so each class keeps
    /// its share; all rows when there are few enough.</summary>
    internal static int[] Subset(int[] labels, int max)
    {
        if (labels.Length <= max) return Enumerable.Range(0, labels.Length).ToArray();
        var order = new PhiloxStream(0xE3BED, 0).Permutation(labels.Length);
        var perClass = labels.GroupBy(l => l).ToDictionary(g => g.Key, g => (int)Math.Round((double)g.Count() * max / labels.Length));
        var taken = new Dictionary<int, int>();
        var picked = new List<int>();
        foreach (int i in order)
        {
            int l = labels[i];
            taken.TryGetValue(l, out int t);
            if (t >= perClass[l] || picked.Count >= max) continue;
            taken[l] = t + 1;
            picked.Add(i);
        }
        picked.Sort();
        return [.. picked];
    }

    /// <summary>Scores [N, k] on the top k principal components of the rows of <paramref name="x"/>, largest variance first.</summary>
    internal static double[,] Pca(double[,] x, int k) => Project(x, PcaFit(x, k));

    /// <summary>The mean of the rows and the top k principal directions (columns of a [D, k] matrix).</summary>
    internal static (double[] Mean, double[,] Components) PcaFit(double[,] x, int k)
    {
        int n = x.GetLength(0), d = x.GetLength(1);
        var mean = new double[d];
        var c = (double[,])x.Clone();
        for (int j = 0; j < d; j++)
        {
            for (int i = 0; i < n; i++) mean[j] += c[i, j];
            mean[j] /= n;
            for (int i = 0; i < n; i++) c[i, j] -= mean[j];
        }
        // Subspace iteration: Q ← orth(Cᵀ C Q) converges to the top-k eigenvectors; with k = d it is the whole space
        // and the rotation below is exact from the start.
        var rng = new PhiloxStream(0xBCA, 0);
        var q = new double[d, k];
        for (int j = 0; j < d; j++)
            for (int t = 0; t < k; t++) q[j, t] = k == d ? (j == t ? 1 : 0) : rng.NextGaussian();
        Orthonormalize(q);
        int sweeps = k == d ? 0 : 8;
        for (int it = 0; it < sweeps; it++)
        {
            q = Multiply(Transpose(c), Multiply(c, q));
            Orthonormalize(q);
        }
        var b = Multiply(c, q);
        var (values, vectors) = Jacobi(Multiply(Transpose(b), b));
        var order = Enumerable.Range(0, k).OrderByDescending(i => values[i]).ToArray();
        var components = new double[d, k];
        for (int j = 0; j < d; j++)
            for (int t = 0; t < k; t++)
            {
                double s = 0;
                for (int u = 0; u < k; u++) s += q[j, u] * vectors[u, order[t]];
                components[j, t] = s;
            }
        return (mean, components);
    }

    private static double[,] Project(double[,] x, (double[] Mean, double[,] Components) fit)
    {
        int n = x.GetLength(0), d = x.GetLength(1);
        var centred = new double[n, d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) centred[i, j] = x[i, j] - fit.Mean[j];
        return Multiply(centred, fit.Components);
    }

    /// <summary>The rows of <paramref name="test"/> on the two leading linear discriminants (Fisher) of the labelled
    /// rows of <paramref name="train"/>, computed in train's top principal components: whiten the within-class
    /// scatter (plus a ridge of 1e-6 of its mean variance, for rank-deficient classes), then take the top
    /// eigenvectors of the whitened between-class scatter.</summary>
    internal static double[,] Lda(double[,] train, int[] labels, double[,] test)
    {
        var keep = Enumerable.Range(0, labels.Length).Where(i => labels[i] >= 0).ToArray();
        int d = train.GetLength(1), k = Math.Min(MaxComponents, Math.Min(d, keep.Length - 1));
        var fitRows = new double[keep.Length, d];
        for (int r = 0; r < keep.Length; r++)
            for (int j = 0; j < d; j++) fitRows[r, j] = train[keep[r], j];
        var pca = PcaFit(fitRows, k);
        var z = Project(fitRows, pca);
        var y = keep.Select(i => labels[i]).ToArray();
        int n = y.Length;
        var classes = y.Distinct().Order().ToArray();
        var means = classes.ToDictionary(c => c, c =>
        {
            var m = new double[k];
            int count = 0;
            for (int i = 0; i < n; i++)
                if (y[i] == c) { count++; for (int t = 0; t < k; t++) m[t] += z[i, t]; }
            for (int t = 0; t < k; t++) m[t] /= count;
            return (Mean: m, Count: count);
        });
        var within = new double[k, k];
        var between = new double[k, k];
        for (int i = 0; i < n; i++)
        {
            var m = means[y[i]].Mean;
            for (int p = 0; p < k; p++)
                for (int q = 0; q < k; q++) within[p, q] += (z[i, p] - m[p]) * (z[i, q] - m[q]) / n;
        }
        foreach (var (m, count) in means.Values)
            for (int p = 0; p < k; p++)
                for (int q = 0; q < k; q++) between[p, q] += count * m[p] * m[q] / n;
        double ridge = 0;
        for (int p = 0; p < k; p++) ridge += within[p, p];
        ridge = Math.Max(ridge / k * 1e-6, 1e-300);
        var (wValues, wVectors) = Jacobi(within);
        var whiten = new double[k, k];
        for (int p = 0; p < k; p++)
            for (int q = 0; q < k; q++) whiten[p, q] = wVectors[p, q] / Math.Sqrt(Math.Max(wValues[q], 0) + ridge);
        var (bValues, bVectors) = Jacobi(Multiply(Transpose(whiten), Multiply(between, whiten)));
        var order = Enumerable.Range(0, k).OrderByDescending(i => bValues[i]).Take(2).ToArray();
        var directions = new double[k, 2];
        for (int p = 0; p < k; p++)
            for (int t = 0; t < 2; t++)
            {
                double s = 0;
                for (int u = 0; u < k; u++) s += whiten[p, u] * bVectors[u, order[t]];
                directions[p, t] = s;
            }
        return Multiply(Project(test, pca), directions);
    }

    private static double PerplexityFor(int n) => Math.Min(Perplexity, (n - 1) / 3.0);

    /// <summary>A 2-D t-SNE embedding of the rows of <paramref name="x"/>.</summary>
    internal static double[,] Tsne(double[,] x)
    {
        int n = x.GetLength(0), d = x.GetLength(1);
        var flat = new double[n * d];
        for (int i = 0; i < n; i++)
            for (int t = 0; t < d; t++) flat[i * d + t] = x[i, t];
        var dist = new double[n * n];
        Rows(n, i =>
        {
            var xi = flat.AsSpan(i * d, d);
            for (int j = 0; j < n; j++)
            {
                var xj = flat.AsSpan(j * d, d);
                double s = 0;
                for (int t = 0; t < d; t++) { double v = xi[t] - xj[t]; s += v * v; }
                dist[i * n + j] = s;
            }
        });
        var p = Affinities(dist, n, PerplexityFor(n));

        // y holds (y0, y1) per point; the start is the first two PCA scores scaled to std 1e-4.
        var y = new double[2 * n];
        double sd = 0;
        for (int i = 0; i < n; i++) sd += x[i, 0] * x[i, 0];
        sd = Math.Sqrt(sd / n);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < 2; t++) y[2 * i + t] = sd > 0 && t < d ? 1e-4 * x[i, t] / sd : 1e-4 * (i % 7 - 3 + t);
        var update = new double[2 * n];
        var gains = new double[2 * n];
        Array.Fill(gains, 1.0);
        var w = new double[n * n];
        var rowSums = new double[n];
        var grad = new double[2 * n];
        for (int it = 0; it < Iterations; it++)
        {
            double exaggeration = it < ExaggerationIterations ? Exaggeration : 1;
            double momentum = it < ExaggerationIterations ? 0.5 : 0.8;
            Rows(n, i =>
            {
                var wi = w.AsSpan(i * n, n);
                double yi0 = y[2 * i], yi1 = y[2 * i + 1], sum = 0;
                for (int j = 0; j < n; j++)
                {
                    double dx = yi0 - y[2 * j], dy = yi1 - y[2 * j + 1];
                    double v = j == i ? 0 : 1 / (1 + dx * dx + dy * dy);
                    wi[j] = v;
                    sum += v;
                }
                rowSums[i] = sum;
            });
            double z = 0;
            for (int i = 0; i < n; i++) z += rowSums[i];
            double invZ = 1 / z;
            Rows(n, i =>
            {
                var wi = w.AsSpan(i * n, n);
                var pi = p.AsSpan(i * n, n);
                double yi0 = y[2 * i], yi1 = y[2 * i + 1], g0 = 0, g1 = 0;
                for (int j = 0; j < n; j++)
                {
                    double v = wi[j];
                    double m = (exaggeration * pi[j] - v * invZ) * v;
                    g0 += m * (yi0 - y[2 * j]);
                    g1 += m * (yi1 - y[2 * j + 1]);
                }
                grad[2 * i] = 4 * g0;
                grad[2 * i + 1] = 4 * g1;
            });
            for (int k = 0; k < 2 * n; k++)
            {
                gains[k] = Math.Sign(grad[k]) != Math.Sign(update[k]) ? gains[k] + 0.2 : Math.Max(gains[k] * 0.8, 0.01);
                update[k] = momentum * update[k] - LearningRate * gains[k] * grad[k];
                y[k] += update[k];
            }
        }
        var result = new double[n, 2];
        for (int i = 0; i < n; i++) { result[i, 0] = y[2 * i]; result[i, 1] = y[2 * i + 1]; }
        return result;
    }

    /// <summary>Symmetrized input affinities p_ij = (p_j|i + p_i|j) / 2N, each conditional p_·|i a Gaussian over the
    /// squared distances whose precision gives perplexity <paramref name="perplexity"/> (bisection, 64 steps).</summary>
    private static double[] Affinities(double[] dist, int n, double perplexity)
    {
        var cond = new double[n * n];
        double target = Math.Log(perplexity);
        Rows(n, i =>
        {
            double lo = 0, hi = double.PositiveInfinity, beta = 1;
            for (int step = 0; step < 64; step++)
            {
                double sum = 0, weighted = 0;
                for (int j = 0; j < n; j++)
                {
                    if (j == i) continue;
                    double e = Math.Exp(-beta * dist[i * n + j]);
                    sum += e;
                    weighted += e * dist[i * n + j];
                }
                double entropy = sum > 0 ? Math.Log(sum) + beta * weighted / sum : 0;
                if (Math.Abs(entropy - target) < 1e-6) break;
                if (entropy > target) { lo = beta; beta = double.IsPositiveInfinity(hi) ? beta * 2 : (beta + hi) / 2; }
                else { hi = beta; beta = (beta + lo) / 2; }
            }
            double total = 0;
            for (int j = 0; j < n; j++) total += j == i ? 0 : Math.Exp(-beta * dist[i * n + j]);
            for (int j = 0; j < n; j++) cond[i * n + j] = j == i || total == 0 ? 0 : Math.Exp(-beta * dist[i * n + j]) / total;
        });
        var p = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) p[i * n + j] = Math.Max((cond[i * n + j] + cond[j * n + i]) / (2.0 * n), 1e-12);
        return p;
    }

    /// <summary>body(i) for every row; in parallel only when there are enough rows to pay for the threads.</summary>
    private static void Rows(int n, Action<int> body)
    {
        if (n < 256) for (int i = 0; i < n; i++) body(i);
        else Parallel.For(0, n, body);
    }

    private static double[,] Transpose(double[,] a)
    {
        int r = a.GetLength(0), c = a.GetLength(1);
        var t = new double[c, r];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j, i] = a[i, j];
        return t;
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        int r = a.GetLength(0), m = a.GetLength(1), c = b.GetLength(1);
        var o = new double[r, c];
        Rows(r, i =>
        {
            for (int k = 0; k < m; k++)
            {
                double v = a[i, k];
                if (v == 0) continue;
                for (int j = 0; j < c; j++) o[i, j] += v * b[k, j];
            }
        });
        return o;
    }

    /// <summary>Modified Gram–Schmidt on the columns, in place; a column that collapses is replaced by a unit vector.</summary>
    private static void Orthonormalize(double[,] q)
    {
        int d = q.GetLength(0), k = q.GetLength(1);
        for (int t = 0; t < k; t++)
        {
            for (int u = 0; u < t; u++)
            {
                double dot = 0;
                for (int j = 0; j < d; j++) dot += q[j, t] * q[j, u];
                for (int j = 0; j < d; j++) q[j, t] -= dot * q[j, u];
            }
            double norm = 0;
            for (int j = 0; j < d; j++) norm += q[j, t] * q[j, t];
            norm = Math.Sqrt(norm);
            for (int j = 0; j < d; j++) q[j, t] = norm > 1e-300 ? q[j, t] / norm : (j == t % d ? 1 : 0);
        }
    }

    /// <summary>Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations.</summary>
    internal static (double[] Values, double[,] Vectors) Jacobi(double[,] symmetric)
    {
        int k = symmetric.GetLength(0);
        var a = (double[,])symmetric.Clone();
        var v = new double[k, k];
        for (int i = 0; i < k; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, scale = 0;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) { if (i != j) off += a[i, j] * a[i, j]; else scale += a[i, i] * a[i, i]; }
            if (off <= 1e-30 * Math.Max(scale, 1e-300)) break;
            for (int p = 0; p < k - 1; p++)
                for (int r = p + 1; r < k; r++)
                {
                    if (a[p, r] == 0) continue;
                    double theta = (a[r, r] - a[p, p]) / (2 * a[p, r]);
                    double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double cos = 1 / Math.Sqrt(t * t + 1), sin = t * cos;
                    for (int i = 0; i < k; i++)
                    {
                        double aip = a[i, p], air = a[i, r];
                        a[i, p] = cos * aip - sin * air;
                        a[i, r] = sin * aip + cos * air;
                    }
                    for (int i = 0; i < k; i++)
                    {
                        double api = a[p, i], ari = a[r, i];
                        a[p, i] = cos * api - sin * ari;
                        a[r, i] = sin * api + cos * ari;
                    }
                    for (int i = 0; i < k; i++)
                    {
                        double vip = v[i, p], vir = v[i, r];
                        v[i, p] = cos * vip - sin * vir;
                        v[i, r] = sin * vip + cos * vir;
                    }
                }
        }
        var values = new double[k];
        for (int i = 0; i < k; i++) values[i] = a[i, i];
        return (values, v);
    }
}
