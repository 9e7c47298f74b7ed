// Linear evaluation on frozen features: multinomial logistic regression trained with Nesterov-momentum SGD
// and a cosine learning rate, as in the SimCLR paper's appendix B.6 (which trains on frozen h with no
// augmentation). Features are standardized with the training split's per-dimension mean and std first, so
// an encoder's feature scale (very different between a random and a trained network) does not decide the
// outcome; the same probe then measures both encoders. Runs on plain host arrays: features are extracted
// once, and [N, D] with D ≤ 2048 is small next to the encoder.
using SimClr.Kernels;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace SimClr.Training.Evaluation;

/// <summary>Features as a row-major [Count, Dim] host matrix with integer labels.</summary>
public sealed record FeatureSet(float[] Features, int[] Labels, int Dim)
{
    public int Count => Labels.Length;
    public ReadOnlySpan<float> Row(int i) => Features.AsSpan(i * Dim, Dim);
}

public sealed record LinearProbeOptions(int Epochs = 100, double LearningRate = 0.1, double WeightDecay = 1e-6, int BatchSize = 256, double Momentum = 0.9, ulong Seed = 1);

public readonly record struct Accuracy(double Top1, double Top5)
{
    public override string ToString() => $"top-1 {Top1:P1}, top-5 {Top5:P1}";
}

public static class LinearProbe
{
    /// <summary>The stream the per-epoch sample orders are drawn from (with the options' seed).</summary>
    internal const uint OrderStream = 0x11EA5;

    /// <summary>Trains on <paramref name="train"/> and reports accuracy on <paramref name="test"/>.</summary>
    public static Accuracy Evaluate(FeatureSet train, FeatureSet test, int classes, LinearProbeOptions o) =>
        Evaluate(train, test, classes, o, null, CancellationToken.None);

    /// <summary>As above; reports the epochs done and stops between epochs when <paramref name="cancel"/> is set
    /// (OperationCanceledException).</summary>
    public static Accuracy Evaluate(FeatureSet train, FeatureSet test, int classes, LinearProbeOptions o,
        IProgress<long>? progress, CancellationToken cancel)
    {
        if (train.Dim != test.Dim) throw new ArgumentException($"train features have {train.Dim} dims, test {test.Dim}");
        if (train.Count == 0 || test.Count == 0) throw new ArgumentException("linear evaluation needs non-empty train and test sets");
        var (mean, invStd) = Standardizer(train);
        var (w, b) = Fit(Standardize(train, mean, invStd), train.Labels, train.Dim, classes, o, progress, cancel);
        return Score(Standardize(test, mean, invStd), test.Labels, w, b, classes, train.Dim);
    }

    /// <summary>The classifier (W [classes, d] row-major, b [classes]) trained on standardized rows
    /// <paramref name="xTrain"/> [labels.Length, d].</summary>
    internal static (float[] W, float[] B) Fit(float[] xTrain, int[] labels, int d, int classes, LinearProbeOptions o) =>
        Fit(xTrain, labels, d, classes, o, null, CancellationToken.None);

    /// <summary>As above; reports the epochs done and stops between epochs when <paramref name="cancel"/> is set.</summary>
    internal static (float[] W, float[] B) Fit(float[] xTrain, int[] labels, int d, int classes, LinearProbeOptions o,
        IProgress<long>? progress, CancellationToken cancel)
    {
        var w = new float[classes * d];
        var b = new float[classes];
        var vw = new float[w.Length];
        var vb = new float[classes];
        var gw = new float[w.Length];
        var gb = new float[classes];
        var logits = new float[classes];
        var order = new PhiloxStream(o.Seed, stream: OrderStream);
        int n = labels.Length;
        int stepsPerEpoch = (n + o.BatchSize - 1) / o.BatchSize;
        long totalSteps = (long)stepsPerEpoch * o.Epochs, step = 0;
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            var perm = order.Permutation(n);
            for (int start = 0; start < n; start += o.BatchSize, step++)
            {
                int count = Math.Min(o.BatchSize, n - start);
                Array.Clear(gw);
                Array.Clear(gb);
                for (int k = 0; k < count; k++)
                {
                    int i = perm[start + k];
                    var x = xTrain.AsSpan(i * d, d);
                    Logits(logits, w, b, x, classes, d);
                    Softmax(logits);
                    logits[labels[i]] -= 1f;
                    for (int c = 0; c < classes; c++)
                    {
                        TP.MultiplyAdd(x, logits[c], gw.AsSpan(c * d, d), gw.AsSpan(c * d, d));
                        gb[c] += logits[c];
                    }
                }
                float lr = (float)(o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / totalSteps)));
                NesterovStep(w, vw, gw, 1f / count, (float)o.WeightDecay, (float)o.Momentum, lr);
                NesterovStep(b, vb, gb, 1f / count, 0f, (float)o.Momentum, lr);
            }
            progress?.Report(epoch + 1);
            cancel.ThrowIfCancellationRequested();
        }
        return (w, b);
    }

    internal static (float[] Mean, float[] InvStd) Standardizer(FeatureSet s)
    {
        int d = s.Dim;
        var sum = new double[d];
        var sq = new double[d];
        for (int i = 0; i < s.Count; i++)
        {
            var r = s.Row(i);
            for (int j = 0; j < d; j++) { sum[j] += r[j]; sq[j] += (double)r[j] * r[j]; }
        }
        var mean = new float[d];
        var inv = new float[d];
        for (int j = 0; j < d; j++)
        {
            double m = sum[j] / s.Count;
            double var = Math.Max(0, sq[j] / s.Count - m * m);
            mean[j] = (float)m;
            // A constant feature carries no information; leave it at zero instead of dividing by ~0.
            inv[j] = var > 1e-12 ? (float)(1 / Math.Sqrt(var)) : 0f;
        }
        return (mean, inv);
    }

    internal static float[] Standardize(FeatureSet s, float[] mean, float[] invStd)
    {
        var x = new float[s.Features.Length];
        for (int i = 0; i < s.Count; i++)
        {
            var dst = x.AsSpan(i * s.Dim, s.Dim);
            TP.Subtract(s.Row(i), mean, dst);
            TP.Multiply(dst, invStd, dst);
        }
        return x;
    }

    private static void Logits(Span<float> logits, float[] w, float[] b, ReadOnlySpan<float> x, int classes, int d)
    {
        for (int c = 0; c < classes; c++) logits[c] = TP.Dot(w.AsSpan(c * d, d), x) + b[c];
    }

    private static void Softmax(Span<float> z)
    {
        float max = TP.Max(z);
        float sum = 0;
        for (int c = 0; c < z.Length; c++) { z[c] = MathF.Exp(z[c] - max); sum += z[c]; }
        TP.Divide(z, sum, z);
    }

    /// <summary>Nesterov momentum as in torch.optim.SGD: g' = g/B + wd·w; v = m·v + g'; w -= lr·(g' + m·v).</summary>
    private static void NesterovStep(float[] w, float[] v, float[] g, float gradScale, float wd, float m, float lr)
    {
        for (int i = 0; i < w.Length; i++)
        {
            float gi = g[i] * gradScale + wd * w[i];
            v[i] = m * v[i] + gi;
            w[i] -= lr * (gi + m * v[i]);
        }
    }

    private static Accuracy Score(float[] x, int[] labels, float[] w, float[] b, int classes, int d)
    {
        var logits = new float[classes];
        int top1 = 0, top5 = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            Logits(logits, w, b, x.AsSpan(i * d, d), classes, d);
            int rank = RankOf(logits, labels[i]);
            if (rank == 0) top1++;
            if (rank < 5) top5++;
        }
        return new Accuracy((double)top1 / labels.Length, (double)top5 / labels.Length);
    }

    /// <summary>How many classes score strictly higher than the true one (ties count in the label's favour
    /// only for lower class indices, so a constant classifier is not credited with every label).</summary>
    internal static int RankOf(ReadOnlySpan<float> scores, int label)
    {
        int rank = 0;
        float s = scores[label];
        for (int c = 0; c < scores.Length; c++)
            if (scores[c] > s || (scores[c] == s && c < label)) rank++;
        return rank;
    }
}
