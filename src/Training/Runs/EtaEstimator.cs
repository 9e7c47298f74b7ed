// The "left" of a progress row: a smoothed time per unit (step, image, epoch) times the units still to do.
// The smoothing is an exponential moving average weighted by elapsed time (time constant Tau), so it behaves
// the same whether a unit takes 10 ms or 80 s. The first interval is start-up (JIT, first allocations, kernel
// and algorithm selection) and is used only until a second one exists; reporting the starting count again
// before any progress restarts that first interval (a phase that did other work before its first unit). An
// interval more than OutlierFactor times the average is a pause (a kNN monitor between two steps, a
// checkpoint write) and is left out, unless the one before it was slow too: then the run really slowed
// down, and it counts.
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
    private bool _afterPause;

    /// <summary>Smoothed throughput, once one interval has been seen.</summary>
    public double? UnitsPerSecond => _secondsPerUnit is > 0 and var s ? 1 / s : null;

    /// <summary>Smoothed seconds per unit, once one interval has been seen.</summary>
    public double? SecondsPerUnit => _secondsPerUnit;

    /// <summary><paramref name="done"/> units are done at <paramref name="time"/> seconds after the start.</summary>
    public void Observe(double time, long done)
    {
        if (done == _lastDone && _intervals == 0) _lastTime = time;
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
        bool slow = sample > OutlierFactor * average;
        bool pause = slow && !_afterPause;
        _afterPause = slow;
        if (pause) return;
        double alpha = 1 - Math.Exp(-sample * units / Tau);
        _secondsPerUnit = average + alpha * (sample - average);
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
