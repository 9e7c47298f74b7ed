// SimCLR's learning-rate schedule, evaluated per step: a linear warmup to the peak, then a cosine decay to
// zero at the last step (no restarts). The peak comes from RunConfig.PeakLearningRate (linear or √B scaling).
// Short runs: when the requested warmup is not shorter than the whole run, the warmup is clipped to a tenth
// of the run (at least one step), so a run of a few epochs still spends most steps at a useful rate.
namespace SimClr.Training.Optim;

public sealed class LearningRateSchedule
{
    public LearningRateSchedule(double peak, double warmupEpochs, int epochs, int stepsPerEpoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(epochs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stepsPerEpoch);
        Peak = peak;
        TotalSteps = (long)epochs * stepsPerEpoch;
        long requested = (long)Math.Round(warmupEpochs * stepsPerEpoch);
        WarmupSteps = requested < TotalSteps ? requested : Math.Max(1, TotalSteps / 10);
        WarmupClipped = requested >= TotalSteps;
    }

    public double Peak { get; }
    public long TotalSteps { get; }
    public long WarmupSteps { get; }
    /// <summary>True when the requested warmup covered the whole run and was clipped to a tenth of it.</summary>
    public bool WarmupClipped { get; }

    /// <summary>The rate used by step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        long decay = TotalSteps - WarmupSteps;
        double progress = decay <= 0 ? 1 : Math.Min(1.0, (double)(step - WarmupSteps) / decay);
        return Peak * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
