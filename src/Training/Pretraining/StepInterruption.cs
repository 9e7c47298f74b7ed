// Ctrl-C while a step runs. Between steps the loop notices the request and stops at the boundary with a
// checkpoint of its own. Inside a step it depends on how long the step still needs: a step with little left
// (every GPU step, most CPU steps) finishes first; a CPU step that would need more than AbandonAfter is
// abandoned. For that, each CPU step that could be that slow begins with a host copy of the whole state
// (ModelState.Snapshot); the abandoning checkpoint holds that copy and the position before the step, so a
// resumed run repeats the step and continues exactly, as from any other checkpoint. The step itself cannot be
// stopped from outside, so the process ends right after the checkpoint (CliContext.EndProcess); where nobody
// ends it (tests), the step runs out and the loop returns the abandoned result at the step's end.
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Training.Checkpoints;
using SimClr.Training.Runs;

namespace SimClr.Training.Pretraining;

internal sealed class StepInterruption(DeviceKind device, TimeSpan abandonAfter)
{
    public static readonly TimeSpan DefaultAbandonAfter = TimeSpan.FromSeconds(3);

    /// <summary>Never abandon a step (a data-parallel job: the other ranks would wait for this one in a collective).</summary>
    public static readonly TimeSpan Never = TimeSpan.MaxValue;

    private readonly Lock _gate = new();
    private readonly EtaEstimator _stepTime = new(0);
    private long _timedSteps;
    private double _timedSeconds;
    private InFlight? _current;
    private PretrainResult? _abandoned;

    private sealed record InFlight(TrainingPosition Before, Action<SafeTensorsWriter> State, Stopwatch Clock);

    /// <summary>Smoothed seconds per step, once one step has been timed.</summary>
    private double? ExpectedSeconds => _stepTime.SecondsPerUnit;

    /// <summary>Before a step at <paramref name="before"/>: takes the host copy when this step might have to be abandoned.</summary>
    public void Begin(TrainingPosition before, Func<Action<SafeTensorsWriter>> snapshot)
    {
        bool mayAbandon = device == DeviceKind.Cpu && abandonAfter != Never && (ExpectedSeconds is not { } expected || expected > abandonAfter.TotalSeconds);
        var state = mayAbandon ? snapshot() : null;
        lock (_gate) _current = state is null ? null : new InFlight(before, state, Stopwatch.StartNew());
    }

    /// <summary>After the step's computation (<paramref name="seconds"/> long): null to carry on, or the result the
    /// loop returns because the step was abandoned meanwhile.</summary>
    public PretrainResult? End(double seconds)
    {
        lock (_gate)
        {
            _current = null;
            _timedSteps++;
            _timedSeconds += seconds;
            _stepTime.Observe(_timedSeconds, _timedSteps);
            return _abandoned;
        }
    }

    /// <summary>From the cancellation callback: abandons the step in progress (through <paramref name="abandon"/>,
    /// which writes the checkpoint) when it would still need more than AbandonAfter, or says it is finishing it.</summary>
    public void OnCancel(Func<TrainingPosition, Action<SafeTensorsWriter>, string, PretrainResult> abandon, Action<string> say)
    {
        lock (_gate)
        {
            if (_current is not { } c || _abandoned is not null) return;
            double? left = ExpectedSeconds is { } expected ? expected - c.Clock.Elapsed.TotalSeconds : null;
            if (left is { } l && l <= abandonAfter.TotalSeconds)
            {
                say($"finishing step {c.Before.Step + 1} (about {ProgressView.Words(TimeSpan.FromSeconds(Math.Max(0, l)))} left)");
                return;
            }
            string how = left is { } more ? $"about {ProgressView.Words(TimeSpan.FromSeconds(more))} of it left" : "its first step, not yet timed";
            _abandoned = abandon(c.Before, c.State, how);
        }
    }
}
