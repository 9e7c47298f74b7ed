// Synchronized batch norm on the CPU: BatchNormForwardTraining and BatchNormBackward split at their
// per-channel reductions, so that the reductions of every rank can be summed (all-reduced) in between.
// Every reduction is accumulated in double from the T values (products of two floats are exact in double),
// and sums[2C + 1] is double whatever T is: the variance Σx²/n − mean² then loses nothing that matters to
// the cancellation that would ruin it in fp32. One channel per work item, as CpuBackend.BatchNorm.cs.
// Accumulation rule: dx is overwritten; dgamma and dbeta are added to (with this rank's sums only, so that the
// gradient all-reduce that follows adds the ranks' shares once).
namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public void SyncBatchNormStatistics(Tensor<double> sums, Tensor<T> x, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormStatistics);
        CheckBatchNorm(s, op);
        Need(x, s.Elements, nameof(x), op);
        Need(sums, 2L * s.Channels + 1, nameof(sums), op);
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            var xs = x.Span;
            double sum = 0, squares = 0;
            for (int n = 0; n < shape.Batch; n++)
            {
                foreach (var v in Plane(xs, shape, n, c))
                {
                    double d = Wide(v);
                    sum += d;
                    squares += d * d;
                }
            }
            sums.Span[c] = sum;
            sums.Span[shape.Channels + c] = squares;
        });
        sums.Span[2 * s.Channels] = (double)s.Batch * s.Spatial;
    }

    public void SyncBatchNormForward(Tensor<T> y, Tensor<T> saveMean, Tensor<T> saveInvStd, Tensor<T> runningMean, Tensor<T> runningVar,
        Tensor<T> x, Tensor<T> gamma, Tensor<T> beta, Tensor<double> sums, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormForward);
        CheckBatchNorm(s, op);
        Need(y, s.Elements, nameof(y), op);
        Need(x, s.Elements, nameof(x), op);
        Need(saveMean, s.Channels, nameof(saveMean), op);
        Need(saveInvStd, s.Channels, nameof(saveInvStd), op);
        Need(runningMean, s.Channels, nameof(runningMean), op);
        Need(runningVar, s.Channels, nameof(runningVar), op);
        Need(gamma, s.Channels, nameof(gamma), op);
        Need(beta, s.Channels, nameof(beta), op);
        double count = Need(sums, 2L * s.Channels + 1, nameof(sums), op)[2 * s.Channels];
        if (!(count >= 2)) throw new ArgumentException($"{op}: training needs more than one value per channel over all ranks, got a count of {count}", nameof(sums));
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            double mean = sums.Span[c] / count;
            double variance = Math.Max(sums.Span[shape.Channels + c] / count - mean * mean, 0);
            NormalizeChannel(y, saveMean, saveInvStd, x, gamma, beta, shape, c, mean, variance);
            double m = shape.Momentum;
            runningMean.Span[c] = Cast((1 - m) * Wide(runningMean.Span[c]) + m * mean);
            runningVar.Span[c] = Cast((1 - m) * Wide(runningVar.Span[c]) + m * variance * count / (count - 1));
        });
    }

    public void SyncBatchNormBackwardReduce(Tensor<double> sums, Tensor<T> dgamma, Tensor<T> dbeta, Tensor<T> dy, Tensor<T> x,
        Tensor<T> saveMean, Tensor<T> saveInvStd, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormBackwardReduce);
        CheckBatchNorm(s, op);
        Need(sums, 2L * s.Channels + 1, nameof(sums), op);
        Need(dgamma, s.Channels, nameof(dgamma), op);
        Need(dbeta, s.Channels, nameof(dbeta), op);
        Need(dy, s.Elements, nameof(dy), op);
        Need(x, s.Elements, nameof(x), op);
        Need(saveMean, s.Channels, nameof(saveMean), op);
        Need(saveInvStd, s.Channels, nameof(saveInvStd), op);
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            double mean = Wide(saveMean.Span[c]);
            double sumDy = 0, sumDyCentered = 0;
            for (int n = 0; n < shape.Batch; n++)
            {
                var dys = Plane(dy.Span, shape, n, c);
                var xs = Plane(x.Span, shape, n, c);
                for (int i = 0; i < dys.Length; i++)
                {
                    double g = Wide(dys[i]);
                    sumDy += g;
                    sumDyCentered += g * (Wide(xs[i]) - mean);
                }
            }
            sums.Span[c] = sumDy;
            sums.Span[shape.Channels + c] = sumDyCentered;
            dgamma.Span[c] += Cast(sumDyCentered * Wide(saveInvStd.Span[c]));
            dbeta.Span[c] += Cast(sumDy);
        });
        sums.Span[2 * s.Channels] = (double)s.Batch * s.Spatial;
    }

    public void SyncBatchNormBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> x, Tensor<T> gamma, Tensor<T> saveMean, Tensor<T> saveInvStd,
        Tensor<double> sums, in BatchNormShape s)
    {
        const string op = nameof(SyncBatchNormBackward);
        CheckBatchNorm(s, op);
        Need(dx, s.Elements, nameof(dx), op);
        Need(dy, s.Elements, nameof(dy), op);
        Need(x, s.Elements, nameof(x), op);
        Need(gamma, s.Channels, nameof(gamma), op);
        Need(saveMean, s.Channels, nameof(saveMean), op);
        Need(saveInvStd, s.Channels, nameof(saveInvStd), op);
        double count = Need(sums, 2L * s.Channels + 1, nameof(sums), op)[2 * s.Channels];
        if (!(count >= 1)) throw new ArgumentException($"{op}: the summed element count is {count}", nameof(sums));
        var shape = s;
        Parallel.For(0, s.Channels, c =>
        {
            // BatchNormBackward's closed form with the sums of the whole (all-rank) batch.
            InputGradientChannel(dx, dy, x, gamma, shape, c, Wide(saveMean.Span[c]), Wide(saveInvStd.Span[c]),
                sums.Span[c], sums.Span[shape.Channels + c], count);
        });
    }
}
