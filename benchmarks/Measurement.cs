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

public sealed record MeasureSettings(int WarmupRuns, int Samples, double MinSampleSeconds)
{
    public static MeasureSettings For(BenchOptions o) =>
        new(o.WarmupRuns, o.Samples, o.Sizes == SizeSet.Smoke ? 2e-4 : 2e-3);
}

public static class Measure
{
    /// <summary>Warm-up, calibrate repetitions so one sample lasts at least MinSampleSeconds, then time.</summary>
    public static Timing Run(IBenchClock clock, Action body, MeasureSettings settings)
    {
        double single = double.MaxValue;
        for (int w = 0; w < settings.WarmupRuns; w++) single = Math.Min(single, clock.Seconds(body, 1));
        int repetitions = single >= settings.MinSampleSeconds
            ? 1
            : (int)Math.Min(1_000_000, Math.Ceiling(settings.MinSampleSeconds / Math.Max(single, 1e-9)));
        var samples = new double[settings.Samples];
        for (int s = 0; s < samples.Length; s++) samples[s] = clock.Seconds(body, repetitions) / repetitions;
        return Timing.FromSamples(samples, repetitions);
    }
}
