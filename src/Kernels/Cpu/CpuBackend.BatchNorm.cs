// Batch normalization over x[N, C, Spatial] on the CPU (Spatial = H·W for 2d, 1 for 1d), one channel
// per work item. Training saves the batch mean and 1/sqrt(var + eps) with the BIASED variance, and
// updates the running statistics PyTorch's way: running = (1 − m)·running + m·batch, with the
// UNBIASED variance for running_var. Statistics accumulate in double whatever T is.
// Accumulation rule: dx is overwritten; dgamma and dbeta are added to.
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
            var xs = x.Span; var ys = y.Span;
            double sum = 0;
            for (int n = 0; n < shape.Batch; n++)
                foreach (var v in Plane(xs, shape, n, c)) sum += Wide(v);
            double mean = sum / count;
            double sq = 0;
            for (int n = 0; n < shape.Batch; n++)
                foreach (var v in Plane(xs, shape, n, c)) { double d = Wide(v) - mean; sq += d * d; }
            double variance = sq / count;
            double invStd = 1.0 / Math.Sqrt(variance + shape.Epsilon);
            double scale = Wide(gamma.Span[c]) * invStd, shift = Wide(beta.Span[c]) - mean * scale;
            for (int n = 0; n < shape.Batch; n++)
            {
                var src = Plane(xs, shape, n, c);
                var dst = Plane(ys, shape, n, c);
                for (int i = 0; i < dst.Length; i++) dst[i] = Cast(Wide(src[i]) * scale + shift);
            }
            saveMean.Span[c] = Cast(mean);
            saveInvStd.Span[c] = Cast(invStd);
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
            for (int n = 0; n < shape.Batch; n++)
            {
                var src = Plane(x.Span, shape, n, c);
                var dst = Plane(y.Span, shape, n, c);
                for (int i = 0; i < dst.Length; i++) dst[i] = Cast(Wide(src[i]) * scale + shift);
            }
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
            double sumDy = 0, sumDyXhat = 0;
            for (int n = 0; n < shape.Batch; n++)
            {
                var xs = Plane(x.Span, shape, n, c);
                var dys = Plane(dy.Span, shape, n, c);
                for (int i = 0; i < xs.Length; i++)
                {
                    double g = Wide(dys[i]);
                    sumDy += g;
                    sumDyXhat += g * (Wide(xs[i]) - mean) * invStd;
                }
            }
            // dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)), the gradient through the batch statistics.
            double k = Wide(gamma.Span[c]) * invStd, meanDy = sumDy / count, meanDyXhat = sumDyXhat / count;
            for (int n = 0; n < shape.Batch; n++)
            {
                var xs = Plane(x.Span, shape, n, c);
                var dys = Plane(dy.Span, shape, n, c);
                var dxs = Plane(dx.Span, shape, n, c);
                for (int i = 0; i < xs.Length; i++)
                {
                    double xhat = (Wide(xs[i]) - mean) * invStd;
                    dxs[i] = Cast(k * (Wide(dys[i]) - meanDy - xhat * meanDyXhat));
                }
            }
            dgamma.Span[c] += Cast(sumDyXhat);
            dbeta.Span[c] += Cast(sumDy);
        });
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
