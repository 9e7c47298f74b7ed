// The SimCLR pretraining loop. Per step: the epoch's permutation (a function of seed and epoch) gives B
// sample indices; AugmentViews writes view 0 into rows [0, B) and view 1 into rows [B, 2B) of one [2B, 3, H, W]
// batch; the model's forward gives the NT-Xent loss on the device; backward; one LARS update over the flat
// buffer with the step's learning rate (warmup + cosine). On a GPU the loss is read back every k steps only
// (the CPU backend is synchronous, so there it is read every step). A non-finite loss stops the run without
// writing a checkpoint, so the last good one is kept, and names the step. A checkpoint is written after every
// epoch, at --stop-after and on Ctrl-C; every random decision depends only on (seed, epoch, sample, view), and
// the checkpoint holds parameters, BN statistics, counters and momentum, so a resumed run continues exactly.
// A Ctrl-C checkpoint also holds the interrupted epoch's loss readings so far (sum and count), so the epoch's
// loss record after a resume averages all of its steps, not only the resumed ones.
// Ctrl-C inside a long CPU step abandons it (StepInterruption). Epochs are numbered from 1 in every record and
// message: a step record carries the epoch it belongs to, an epoch or knn record the epoch just completed.
// Data parallelism (DataParallel): each rank takes its slice of the step's B indices and builds its views, one
// all-reduce sums the gradients before LARS, a stop asked on any rank stops all at the same step boundary
// (so with more than one rank a step is never abandoned and the kNN monitor is not cut short: a rank that
// left alone would leave the others waiting in a collective), and only rank 0 writes (on the other ranks run
// and metrics are null).
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Distributed;
using SimClr.Training.Evaluation;
using SimClr.Training.Optim;
using SimClr.Training.Runs;

namespace SimClr.Training.Pretraining;

public enum PretrainStatus { Completed, Paused, Interrupted, Diverged }

public sealed record PretrainResult(PretrainStatus Status, TrainingPosition Position, string? LastCheckpoint, double ImagesPerSecond,
    double? LastKnnTop1, string? Problem);

/// <summary>Test hooks: called after each optimizer step with the global step and the store; inside each step
/// (after backward, before the update) with the step it will complete; before the final evaluation; and the
/// step time left above which a Ctrl-C abandons a CPU step (StepInterruption.DefaultAbandonAfter unless set).</summary>
public sealed class TrainingHooks
{
    public Action<long, ParameterStore<float>>? AfterStep { get; init; }
    public Action<long>? InsideStep { get; init; }
    public Action? BeforeEvaluation { get; init; }
    public TimeSpan? AbandonAfter { get; init; }
}

public sealed class Pretrainer(IBackend<float> backend, RunConfig config, DatasetSplits data, RunDirectory? run, MetricsLog? metrics)
{
    /// <summary>Called with the result when a Ctrl-C abandons a step, right after its checkpoint is written, while
    /// the step still runs: the command reports and ends the process there.</summary>
    public Action<PretrainResult>? OnAbandoned { get; init; }

    /// <summary>The best kNN top-1 so far (NaN before any), after Run.</summary>
    public double BestKnnTop1 { get; private set; } = double.NaN;

    public PretrainResult Run(SimClrModel<float> model, Storage<float> momentum, TrainingPosition start, double bestMetric,
        IProgressSink progress, CancellationToken cancel, TrainingHooks? hooks = null, EpochLoss resumedEpochLoss = default, DataParallel? parallel = null)
    {
        parallel ??= DataParallel.Single;
        BestKnnTop1 = bestMetric;
        var train = data.Pretrain;
        int b = config.BatchSize, pairs = b / parallel.Size;
        int stepsPerEpoch = EpochOrder.StepsPerEpoch(train.Count, b);
        var schedule = new LearningRateSchedule(config.PeakLearningRate(), config.WarmupEpochs, config.Epochs, stepsPerEpoch);
        if (schedule.WarmupClipped && start.Step == 0)
            progress.Message($"note: --warmup-epochs {config.WarmupEpochs} covers the whole {config.Epochs}-epoch run; warming up over the first {schedule.WarmupSteps} of {schedule.TotalSteps} steps instead");
        var spec = config.AugmentSpec();
        var store = model.Parameters;
        var checkpoints = parallel.IsWriter ? new CheckpointStore(run!.CheckpointDir, config.KeepLast) : null;
        bool readEveryStep = backend.Info.Device == DeviceKind.Cpu;
        bool alone = parallel.Size == 1;
        // With other ranks a phase can only stop where all of them agree to (AgreeToStop), never on its own.
        var phaseCancel = alone ? cancel : CancellationToken.None;

        using var images = ResidentImages.Upload(backend, train);
        using var indices = backend.Allocate<int>(pairs);
        using var views = backend.Allocate<float>(2L * pairs * 3 * spec.OutHeight * spec.OutWidth);
        using var normScratch = backend.Allocate<float>(2L * store.SegmentCount);
        var viewBatch = views.AsTensor(new Shape(2 * pairs, 3, spec.OutHeight, spec.OutWidth), Layout.NCHW);
        var lossHost = new float[1];
        var hostIndices = new int[pairs];

        long step = start.Step;
        double? lastKnn = null;
        string? lastCheckpoint = null;
        double lastLoss = double.NaN;
        var epochLoss = start.EpochStep > 0 ? resumedEpochLoss : default;
        var clock = Stopwatch.StartNew();
        long imagesSeen = 0;
        Action<SafeTensorsWriter> saveState = w => ModelState.Save(w, store, momentum);
        Func<Action<SafeTensorsWriter>> snapshot = () => ModelState.Snapshot(store, momentum);
        CheckpointInfo Info(TrainingPosition at, EpochLoss partial) => new(config, at, lastLoss, BestKnnTop1, partial);
        string? Save(TrainingPosition at, EpochLoss partial, bool isBest = false) => checkpoints?.Save(Info(at, partial), saveState, isBest);
        PretrainResult Result(PretrainStatus status, TrainingPosition at, string? checkpoint, string? problem = null) =>
            new(status, at, checkpoint, Rate(imagesSeen, clock), lastKnn, problem);
        int stopAt = config.StopAfter > 0 ? Math.Min(config.StopAfter, config.Epochs) : config.Epochs;
        var estimate = new RunEstimate(config, (long)stepsPerEpoch * config.Epochs, train.Count, data.Test.Count, backend.Info.Name);
        var interruption = new StepInterruption(backend.Info.Device,
            alone ? hooks?.AbandonAfter ?? StepInterruption.DefaultAbandonAfter : StepInterruption.Never);
        using var onCancel = cancel.Register(() => interruption.OnCancel((at, state, how) =>
        {
            // The state and the epoch's loss readings are those from before the abandoned step.
            string? path = checkpoints?.Save(Info(at, epochLoss), state, isBest: false);
            progress.Message($"abandoned step {at.Step + 1} ({how}); checkpoint {path} holds the state after step {at.Step}, where --resume repeats it");
            var abandoned = Result(PretrainStatus.Interrupted, at, path);
            OnAbandoned?.Invoke(abandoned);
            return abandoned;
        }, progress.Message));

        if (start.Step == 0 && config.Eval != EvalMode.None)
        {
            // Epoch 0: the kNN of the encoder before any step, which is the random-init encoder the final
            // evaluation compares with (same seed); the plots draw it as the baseline.
            if (KnnMonitor(model, "kNN baseline (random init)", progress, phaseCancel) is not { } baseline)
                return Result(PretrainStatus.Interrupted, start, null);
            metrics?.Append(KnnRecord(0, 0, baseline));
            progress.Message($"epoch 0 (random init): kNN top-1 {baseline.Top1:P1}");
            clock.Restart();
            // Reporting the starting step again tells the row that its steps begin only now.
            progress.Update(start.Step, start.Epoch, 0, null, schedule.At(start.Step));
        }
        for (int epoch = start.Epoch; epoch < config.Epochs; epoch++)
        {
            var order = EpochOrder.Permutation(config.Seed, epoch, train.Count);
            int firstStep = epoch == start.Epoch ? start.EpochStep : 0;
            var epochClock = Stopwatch.StartNew();
            for (int s = firstStep; s < stepsPerEpoch; s++)
            {
                if (parallel.AgreeToStop(cancel.IsCancellationRequested))
                {
                    var at = new TrainingPosition(epoch, step, s);
                    lastCheckpoint = Save(at, epochLoss);
                    progress.Message($"stopped after step {at.Step} (epoch {epoch + 1}, {s} of its {stepsPerEpoch} steps done); checkpoint {lastCheckpoint}");
                    return Result(PretrainStatus.Interrupted, at, lastCheckpoint);
                }
                interruption.Begin(new TrainingPosition(epoch, step, s), snapshot);
                long stepStart = Stopwatch.GetTimestamp();
                parallel.Slice(EpochOrder.Batch(order, s, b)).CopyTo(hostIndices);
                backend.Upload(indices.AsTensor(), hostIndices);
                backend.AugmentViews(viewBatch.Rows(0, pairs), images.Images, indices.AsTensor(), images.Shape, spec, new AugmentKey(config.Seed, epoch, 0));
                backend.AugmentViews(viewBatch.Rows(pairs, pairs), images.Images, indices.AsTensor(), images.Shape, spec, new AugmentKey(config.Seed, epoch, 1));
                store.ZeroGradients();
                var loss = model.Forward(viewBatch);
                model.Backward();
                parallel.AllReduceGradients(store);
                hooks?.InsideStep?.Invoke(step + 1);
                double lr = schedule.At(step);
                backend.LarsUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments, normScratch.AsTensor(),
                    new LarsHyper(lr, config.Momentum, config.WeightDecay, config.TrustCoefficient));
                if (interruption.End(Stopwatch.GetElapsedTime(stepStart).TotalSeconds) is { } abandoned) return abandoned;
                step++;
                imagesSeen += b;
                bool read = readEveryStep || step % config.LossEvery == 0 || s == stepsPerEpoch - 1;
                double? stepLoss = null;
                if (read)
                {
                    parallel.WaitForDevice(() => backend.Download<float>(lossHost, loss));
                    stepLoss = lossHost[0];
                    if (!double.IsFinite(stepLoss.Value))
                    {
                        string when = readEveryStep || config.LossEvery == 1 ? $"at step {step}" : $"at step {step} (read every {config.LossEvery} steps; it became non-finite after step {step - config.LossEvery})";
                        string kept = checkpoints?.Latest() is { } p ? $"the last good checkpoint is {p}" : "no checkpoint had been written yet";
                        string problem = $"the loss is {stepLoss.Value} {when}, epoch {epoch + 1}; the run stopped and {kept}";
                        metrics?.Append(new MetricRecord("diverged", step, epoch + 1, new Dictionary<string, double> { ["loss"] = stepLoss.Value, ["lr"] = lr }));
                        return Result(PretrainStatus.Diverged, new TrainingPosition(epoch, step, s + 1), checkpoints?.Latest(), problem);
                    }
                    lastLoss = stepLoss.Value;
                    epochLoss = epochLoss.Add(lastLoss);
                    metrics?.Append(new MetricRecord("step", step, epoch + 1, new Dictionary<string, double> { ["loss"] = lastLoss, ["lr"] = lr }));
                }
                hooks?.AfterStep?.Invoke(step, store);
                progress.Update(step, epoch, Rate(imagesSeen, clock), stepLoss, lr);
                if (estimate.AfterStep(step, clock.Elapsed.TotalSeconds) is { } longRun) progress.Message(longRun);
            }

            int done = epoch + 1;
            double epochRate = (stepsPerEpoch - firstStep) * (double)b / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9);
            var epochValues = new Dictionary<string, double> { ["loss"] = epochLoss.Mean, ["images_per_second"] = epochRate, ["seconds"] = epochClock.Elapsed.TotalSeconds };
            metrics?.Append(new MetricRecord("epoch", step, done, epochValues));
            epochLoss = default;
            bool isBest = false;
            if (config.Eval != EvalMode.None && (done == config.Epochs || (config.KnnEvery > 0 && done % config.KnnEvery == 0)))
            {
                var knn = KnnMonitor(model, $"kNN monitor (epoch {done})", progress, phaseCancel);
                if (knn is null)
                {
                    var stopped = new TrainingPosition(done, step, 0);
                    lastCheckpoint = Save(stopped, default);
                    progress.Message($"stopped during the kNN monitor after epoch {done}; checkpoint {lastCheckpoint}");
                    return Result(PretrainStatus.Interrupted, stopped, lastCheckpoint);
                }
                lastKnn = knn.Value.Top1;
                metrics?.Append(KnnRecord(step, done, knn.Value));
                isBest = !(knn.Value.Top1 <= BestKnnTop1);
                if (isBest) BestKnnTop1 = knn.Value.Top1;
                progress.Message($"epoch {done}/{config.Epochs}: loss {epochValues["loss"]:F4}, kNN top-1 {knn.Value.Top1:P1}, {epochRate:F0} img/s");
            }
            else
            {
                progress.Message($"epoch {done}/{config.Epochs}: loss {epochValues["loss"]:F4}, {epochRate:F0} img/s");
            }
            var position = new TrainingPosition(done, step, 0);
            lastCheckpoint = Save(position, default, isBest);
            parallel.Checkpointed(step);
            if (run is not null && metrics is not null) Plots.Write(run.Root, metrics.Records);
            if (done == stopAt && done < config.Epochs)
            {
                progress.Message($"paused after epoch {done} (--stop-after); continue with --resume {lastCheckpoint}");
                return Result(PretrainStatus.Paused, position, lastCheckpoint);
            }
        }
        return Result(PretrainStatus.Completed, new TrainingPosition(config.Epochs, step, 0), lastCheckpoint);
    }

    private static MetricRecord KnnRecord(long step, int epoch, Accuracy knn) =>
        new("knn", step, epoch, new Dictionary<string, double> { ["knn_top1"] = knn.Top1, ["knn_top5"] = knn.Top5 });

    private static double Rate(long images, Stopwatch clock) => images / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);

    /// <summary>The kNN monitor, with a row per phase titled by <paramref name="title"/>; null when Ctrl-C stopped it.</summary>
    private Accuracy? KnnMonitor(SimClrModel<float> model, string title, IProgressHost progress, CancellationToken cancel)
    {
        try
        {
            var features = EvaluationProgress.Features(progress, $"{title}: features", backend, model, config, data, cancel, RowEnd.Remove);
            return EvaluationProgress.Knn(progress, $"{title}: votes", backend, features, data.Train.ClassCount, config, cancel, RowEnd.Remove);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            return null;
        }
    }
}
