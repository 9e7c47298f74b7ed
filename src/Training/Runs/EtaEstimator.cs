// The "left" of a progress row: a smoothed time per unit (step, image, epoch) times the units still to do.
// The smoothing is an exponential moving average weighted by elapsed time (time constant Tau), so it behaves
// the same whether a unit takes 10 ms or 80 s. The first interval is start-up (JIT, first allocations, kernel
// and algorithm selection) and is used only until a second one exists. An interval far slower than the
// average (a kNN monitor between two steps, a checkpoint write) is capped at OutlierFactor times the average,
// so one pause nudges the estimate instead of throwing it.
namespace SimClr.Training.Runs;

public sealed class EtaEstimator(long start)
{
    /// <summary>Seconds over which old intervals fade to 1/e of their weight.</summary>
    public const double Tau = 20;
    public const double OutlierFactor = 3;

    private double _lastTime;
    private long _lastDone = start;
    private double? _secondsPerUnit;
    private int _intervals;

    /// <summary>Smoothed throughput, once one interval has been seen.</summary>
    public double? UnitsPerSecond => _secondsPerUnit is > 0 and var s ? 1 / s : null;

    /// <summary>Smoothed seconds per unit, once one interval has been seen.</summary>
    public double? SecondsPerUnit => _secondsPerUnit;

    /// <summary><paramref name="done"/> units are done at <paramref name="time"/> seconds after the start.</summary>
    public void Observe(double time, long done)
    {
        if (done < _lastDone) _lastDone = done;
        if (done <= _lastDone || time <= _lastTime) return;
        long units = done - _lastDone;
        double sample = (time - _lastTime) / units;
        _lastTime = time;
        _lastDone = done;
        _intervals++;
        if (_secondsPerUnit is not { } average || _intervals == 2)
        {
            // The first interval stands alone; the second replaces it, since the first held the start-up.
            _secondsPerUnit = sample;
            return;
        }
        double capped = Math.Min(sample, OutlierFactor * average);
        double alpha = 1 - Math.Exp(-capped * units / Tau);
        _secondsPerUnit = average + alpha * (capped - average);
    }

    /// <summary>Seconds left at <paramref name="now"/> for <paramref name="total"/> units: the smoothed time of the
    /// units still to do, less the time already spent on the one in progress; null before the first interval.</summary>
    public double? SecondsLeft(double now, long total)
    {
        if (_secondsPerUnit is not { } perUnit) return null;
        double left = (total - _lastDone) * perUnit - Math.Max(0, now - _lastTime);
        return Math.Max(0, left);
    }
}
