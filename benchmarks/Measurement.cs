// The timing discipline every figure follows: untimed warm-up runs, a calibration that batches very
// short operations into one sample (so clock resolution never dominates), then at least 20 timed
// samples summarized as median, min and p90 per single run. The clock is pluggable: the CPU suite
// uses Stopwatch, the GPU suites CUDA events recorded on the backend's stream.
using System.Diagnostics;

namespace SimClr.Benchmarks;

/// <summary>Times a body run back to back; returns seconds for all repetitions together.</summary>
public interface IBenchClock
{
    string Name { get; }
    double Seconds(Action body, int repetitions);
}

public sealed class StopwatchClock : IBenchClock
{
    public string Name => "Stopwatch";

    public double Seconds(Action body, int repetitions)
    {
        long start = Stopwatch.GetTimestamp();
        for (int r = 0; r < repetitions; r++) body();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}

/// <summary>Per-run statistics of one benchmark.</summary>
public sealed record Timing(double MedianSeconds, double MinSeconds, double P90Seconds, int Samples, int RepetitionsPerSample)
{
    public static Timing FromSamples(IReadOnlyList<double> perRunSeconds, int repetitions)
    {
        if (perRunSeconds.Count == 0) throw new ArgumentException("no samples", nameof(perRunSeconds));
        var sorted = perRunSeconds.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        double p90 = sorted[Math.Clamp((int)Math.Ceiling(0.9 * n) - 1, 0, n - 1)];
        return new Timing(median, sorted[0], p90, n, repetitions);
    }
}

/// <param name="WarmupSeconds">Warm-up stops early once it has taken this long (after at least one run),
/// so multi-second steps are not warmed up three times over.</param>
public sealed record MeasureSettings(int WarmupRuns, int Samples, double MinSampleSeconds, double WarmupSeconds)
{
    public static MeasureSettings For(BenchOptions o) => o.Sizes == SizeSet.Smoke
        ? new(o.WarmupRuns, o.Samples, 2e-4, 0.2)
        : new(o.WarmupRuns, o.Samples, 2e-3, 2.0);
}

public static class Measure
{
    /// <summary>Warm-up, calibrate repetitions so one sample lasts at least MinSampleSeconds, then time.</summary>
    public static Timing Run(IBenchClock clock, Action body, MeasureSettings settings)
    {
        double single = double.MaxValue, warming = 0;
        for (int w = 0; w < settings.WarmupRuns && (w == 0 || warming < settings.WarmupSeconds); w++)
        {
            double t = clock.Seconds(body, 1);
            single = Math.Min(single, t);
            warming += t;
        }
        int repetitions = single >= settings.MinSampleSeconds
            ? 1
            : (int)Math.Min(1_000_000, Math.Ceiling(settings.MinSampleSeconds / Math.Max(single, 1e-9)));
        var samples = new double[settings.Samples];
        for (int s = 0; s < samples.Length; s++) samples[s] = clock.Seconds(body, repetitions) / repetitions;
        return Timing.FromSamples(samples, repetitions);
    }
}
