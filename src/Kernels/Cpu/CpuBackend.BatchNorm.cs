// Batch normalization over x[N, C, Spatial] on the CPU (Spatial = H·W for 2d, 1 for 1d), one channel
// per work item. Training saves the batch mean and 1/sqrt(var + eps) with the BIASED variance, and
// updates the running statistics PyTorch's way: running = (1 − m)·running + m·batch, with the
// UNBIASED variance for running_var. Each (sample, channel) plane is reduced with SIMD in T and the plane
// results are accumulated in double; the per-channel coefficients are computed in double.
// Accumulation rule: dx is overwritten; dgamma and dbeta are added to.
using System.Numerics;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public void BatchNormForwardTraining(Tensor<T> y, Tensor<T> saveMean, Tensor<T> saveInvStd, Tensor<T> runningMean, Tensor<T> runningVar,
        Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, in BatchNormShape s)
    {
        const string op = nameof(BatchNormForwardTraining);
        CheckBatchNorm(s, op);
        long count = (long)s.Batch * s.Spatial;
        if (count < 2) throw new ArgumentException($"{op}: training needs more than one value per channel, got Batch·Spatial = {count}", nameof(s));
        Need(y, s.Elements, nameof(y), op);
        Need(x, s.Elements, nameof(x), op);
        Need(saveMean, s.Channels, nameof(saveMean), op);
        Need(saveInvStd, s.Channels, nameof(saveInvStd), op);
        Need(runningMean, s.Channels, nameof(runningMean), op);
        Need(runningVar, s.Channels, nameof(runningVar), op);
        Need(gamma, s.Channels, nameof(gamma), op);
        Need(beta, s.Channels, nameof(beta), op);
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            var xs = x.Span;
            double sum = 0;
            for (int n = 0; n < shape.Batch; n++) sum += Wide(TP.Sum<T>(Plane(xs, shape, n, c)));
            double mean = sum / count;
            double sq = 0;
            for (int n = 0; n < shape.Batch; n++) sq += SquaredDeviations(Plane(xs, shape, n, c), Cast(mean));
            NormalizeChannel(y, saveMean, saveInvStd, x, gamma, beta, shape, c, mean, sq / count);
            double m = shape.Momentum;
            runningMean.Span[c] = Cast((1 - m) * Wide(runningMean.Span[c]) + m * mean);
            runningVar.Span[c] = Cast((1 - m) * Wide(runningVar.Span[c]) + m * sq / (count - 1));
        });
    }

    public void BatchNormForwardInference(Tensor<T> y, Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, Tensor<T> runningMean, Tensor<T> runningVar, in BatchNormShape s)
    {
        const string op = nameof(BatchNormForwardInference);
        CheckBatchNorm(s, op);
        Need(y, s.Elements, nameof(y), op);
        Need(x, s.Elements, nameof(x), op);
        Need(gamma, s.Channels, nameof(gamma), op);
        Need(beta, s.Channels, nameof(beta), op);
        Need(runningMean, s.Channels, nameof(runningMean), op);
        Need(runningVar, s.Channels, nameof(runningVar), op);
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            double scale = Wide(gamma.Span[c]) / Math.Sqrt(Wide(runningVar.Span[c]) + shape.Epsilon);
            double shift = Wide(beta.Span[c]) - Wide(runningMean.Span[c]) * scale;
            for (int n = 0; n < shape.Batch; n++) Affine(Plane(x.Span, shape, n, c), Cast(scale), Cast(shift), Plane(y.Span, shape, n, c));
        });
    }

    public void BatchNormBackward(Tensor<T> dx, Tensor<T> dgamma, Tensor<T> dbeta, Tensor<T> dy, Tensor<T> x, Tensor<T> gamma,
        Tensor<T> saveMean, Tensor<T> saveInvStd, in BatchNormShape s)
    {
        const string op = nameof(BatchNormBackward);
        CheckBatchNorm(s, op);
        Need(dx, s.Elements, nameof(dx), op);
        Need(dy, s.Elements, nameof(dy), op);
        Need(x, s.Elements, nameof(x), op);
        Need(dgamma, s.Channels, nameof(dgamma), op);
        Need(dbeta, s.Channels, nameof(dbeta), op);
        Need(gamma, s.Channels, nameof(gamma), op);
        Need(saveMean, s.Channels, nameof(saveMean), op);
        Need(saveInvStd, s.Channels, nameof(saveInvStd), op);
        var shape = s;
        double count = (double)s.Batch * s.Spatial;
        Parallel.For(0, s.Channels, c =>
        {
            double mean = Wide(saveMean.Span[c]), invStd = Wide(saveInvStd.Span[c]);
            double sumDy = 0, sumDyCentered = 0;
            for (int n = 0; n < shape.Batch; n++)
            {
                var dys = Plane(dy.Span, shape, n, c);
                sumDy += Wide(TP.Sum<T>(dys));
                sumDyCentered += CenteredDot(dys, Plane(x.Span, shape, n, c), Cast(mean));
            }
            InputGradientChannel(dx, dy, x, gamma, shape, c, mean, invStd, sumDy, sumDyCentered, count);
            dgamma.Span[c] += Cast(sumDyCentered * invStd);
            dbeta.Span[c] += Cast(sumDy);
        });
    }

    // The per-channel halves that SyncBatchNorm shares (CpuBackend.SyncBatchNorm.cs); each caller brings its own
    // reductions, so plain and synchronized BN differ only in how the sums were taken.

    /// <summary>Channel c of the training forward from its batch mean and biased variance: y = x·scale + shift,
    /// and the saved mean and 1/sqrt(var + eps). The caller moves the running statistics (its unbiased variance
    /// comes from its own sums).</summary>
    private static void NormalizeChannel(Tensor<T> y, Tensor<T> saveMean, Tensor<T> saveInvStd, Tensor<T> x, Tensor<T> gamma, Tensor<T> beta,
        in BatchNormShape s, int c, double mean, double variance)
    {
        double invStd = 1.0 / Math.Sqrt(variance + s.Epsilon);
        double scale = Wide(gamma.Span[c]) * invStd, shift = Wide(beta.Span[c]) - mean * scale;
        for (int n = 0; n < s.Batch; n++) Affine(Plane(x.Span, s, n, c), Cast(scale), Cast(shift), Plane(y.Span, s, n, c));
        saveMean.Span[c] = Cast(mean);
        saveInvStd.Span[c] = Cast(invStd);
    }

    /// <summary>dx of channel c (overwritten) from Σdy and Σdy·(x − mean) over <paramref name="count"/> values:
    /// dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)), the gradient through the batch statistics, written
    /// dx = k·dy + b·(x − mean) + c with x̂ = (x − mean)·invStd (centred, so a large mean cannot cancel).</summary>
    private static void InputGradientChannel(Tensor<T> dx, Tensor<T> dy, Tensor<T> x, Tensor<T> gamma, in BatchNormShape s, int c,
        double mean, double invStd, double sumDy, double sumDyCentered, double count)
    {
        double k = Wide(gamma.Span[c]) * invStd, meanDy = sumDy / count, meanDyXhat = sumDyCentered * invStd / count;
        double b = -k * invStd * meanDyXhat, c0 = -k * meanDy;
        for (int n = 0; n < s.Batch; n++)
            CenteredAffine(Plane(dy.Span, s, n, c), Cast(k), Plane(x.Span, s, n, c), Cast(mean), Cast(b), Cast(c0), Plane(dx.Span, s, n, c));
    }

    /// <summary>Σ (x − mean)² in T lanes, returned in double.</summary>
    private static double SquaredDeviations(ReadOnlySpan<T> x, T mean)
    {
        int i = 0;
        T total = T.Zero;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported && x.Length >= Vector<T>.Count)
        {
            var acc = Vector<T>.Zero;
            var m = new Vector<T>(mean);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var d = new Vector<T>(x[i..]) - m;
                acc += d * d;
            }
            total = Vector.Sum(acc);
        }
        double sum = Wide(total);
        for (; i < x.Length; i++) { double d = Wide(x[i] - mean); sum += d * d; }
        return sum;
    }

    /// <summary>Σ dy·(x − mean) in T lanes, returned in double.</summary>
    private static double CenteredDot(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T mean)
    {
        int i = 0;
        T total = T.Zero;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported && x.Length >= Vector<T>.Count)
        {
            var acc = Vector<T>.Zero;
            var m = new Vector<T>(mean);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                acc += new Vector<T>(dy[i..]) * (new Vector<T>(x[i..]) - m);
            total = Vector.Sum(acc);
        }
        double sum = Wide(total);
        for (; i < x.Length; i++) sum += Wide(dy[i]) * Wide(x[i] - mean);
        return sum;
    }

    /// <summary>y = x·scale + shift.</summary>
    private static void Affine(ReadOnlySpan<T> x, T scale, T shift, Span<T> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vs = new Vector<T>(scale);
            var vb = new Vector<T>(shift);
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(x[i..]) * vs + vb).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = x[i] * scale + shift;
    }

    /// <summary>z = a·u + b·(v − m) + c.</summary>
    private static void CenteredAffine(ReadOnlySpan<T> u, T a, ReadOnlySpan<T> v, T m, T b, T c, Span<T> z)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var va = new Vector<T>(a);
            var vm = new Vector<T>(m);
            var vb = new Vector<T>(b);
            var vc = new Vector<T>(c);
            for (; i <= u.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(u[i..]) * va + (new Vector<T>(v[i..]) - vm) * vb + vc).CopyTo(z[i..]);
        }
        for (; i < u.Length; i++) z[i] = u[i] * a + (v[i] - m) * b + c;
    }

    private static Span<T> Plane(Span<T> t, in BatchNormShape s, int n, int c) => t.Slice((n * s.Channels + c) * s.Spatial, s.Spatial);

    private static void CheckBatchNorm(in BatchNormShape s, string op)
    {
        Positive(s.Batch, "Batch", op); Positive(s.Channels, "Channels", op); Positive(s.Spatial, "Spatial", op);
        if (!(s.Epsilon > 0)) throw new ArgumentException($"{op}: Epsilon must be positive, got {s.Epsilon}", nameof(s));
        if (!(s.Momentum >= 0 && s.Momentum <= 1)) throw new ArgumentException($"{op}: Momentum must lie in [0, 1], got {s.Momentum}", nameof(s));
        if (s.Elements > int.MaxValue) throw new ArgumentException($"{op}: {s} is too large for the CPU backend", nameof(s));
    }
}
