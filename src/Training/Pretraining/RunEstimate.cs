// The one line a long run prints before it settles in: once the first steps of the session are timed, the
// estimated time to the end (pretraining plus evaluation) on this device and how to shorten it, if that is
// over LongRun. The first step holds start-up work, so the rate comes from the steps after it (from the first
// step alone only when it is slow enough that waiting for more would delay the line). Evaluation is
// estimated from the step rate: extracting a feature is a forward pass of one image, about a sixth of what a
// training step spends per image pair (two views, forward and backward).
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Runs;

namespace SimClr.Training.Pretraining;

internal sealed class RunEstimate(RunConfig config, long totalSteps, int trainImages, int testImages, string device)
{
    public static readonly TimeSpan LongRun = TimeSpan.FromMinutes(10);

    /// <summary>Steps timed after the first before the estimate is made.</summary>
    private const int TimedSteps = 3;

    /// <summary>Session time after which the estimate is made with whatever steps are done.</summary>
    private const double PatienceSeconds = 20;

    private long _firstStep = -1;
    private double _firstStepEnd;
    private bool _decided;

    /// <summary>After each step: <paramref name="step"/> is the global step count, <paramref name="elapsed"/> the
    /// session's seconds so far. Returns the line once, when the estimated time left is over LongRun.</summary>
    public string? AfterStep(long step, double elapsed)
    {
        if (_decided) return null;
        if (_firstStep < 0)
        {
            _firstStep = step;
            _firstStepEnd = elapsed;
            if (elapsed < PatienceSeconds) return null;
        }
        long timed = step - _firstStep;
        if (timed < TimedSteps && elapsed < PatienceSeconds && step < totalSteps) return null;
        _decided = true;
        double perStep = timed > 0 ? (elapsed - _firstStepEnd) / timed : elapsed;
        long left = totalSteps - step;
        double training = left * perStep;
        double evaluation = EvaluationPasses(step) * (trainImages + testImages) * perStep / (6.0 * config.BatchSize);
        var total = TimeSpan.FromSeconds(training + evaluation);
        if (total <= LongRun) return null;
        string eval = evaluation >= 1 ? $" + about {ProgressView.Words(TimeSpan.FromSeconds(evaluation))} of evaluation" : "";
        return $"estimate: about {ProgressView.Words(total)} on {device} ({ProgressView.Plain(perStep)} s/step × {left} steps{eval}); to shorten: {Shorter()}";
    }

    /// <summary>Feature passes over train + test still to come: the kNN monitors of the epochs left, then the
    /// final evaluation of the SimCLR and the random-init encoder.</summary>
    private int EvaluationPasses(long step)
    {
        if (config.Eval == EvalMode.None) return 0;
        int stepsPerEpoch = (int)Math.Max(1, totalSteps / Math.Max(1, config.Epochs));
        int epochNow = (int)(step / stepsPerEpoch);
        int monitors = 0;
        for (int e = epochNow + 1; e <= config.Epochs; e++)
            if (e == config.Epochs || (config.KnnEvery > 0 && e % config.KnnEvery == 0)) monitors++;
        return monitors + 2;
    }

    private string Shorter() => config.Dataset switch
    {
        DatasetKind.FashionMnist => "--preset fashion-mnist-cpu, --epochs, --train-subset",
        DatasetKind.Shapes => "--preset shapes-cpu, --epochs, --shapes-count",
        _ => "--epochs, --train-subset, --width, or a CUDA device",
    };
}
