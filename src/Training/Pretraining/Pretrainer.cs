// The SimCLR pretraining loop. Per step: the epoch's permutation (a function of seed and epoch) gives B
// sample indices; AugmentViews writes view 0 into rows [0, B) and view 1 into rows [B, 2B) of one [2B, 3, H, W]
// batch; the model's forward gives the NT-Xent loss on the device; backward; one LARS update over the flat
// buffer with the step's learning rate (warmup + cosine). On a GPU the loss is read back every k steps only
// (the CPU backend is synchronous, so there it is read every step). A non-finite loss stops the run without
// writing a checkpoint, so the last good one is kept, and names the step. A checkpoint is written after every
// epoch, at --stop-after and on Ctrl-C; every random decision depends only on (seed, epoch, sample, view), and
// the checkpoint holds parameters, BN statistics, counters and momentum, so a resumed run continues exactly.
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Optim;
using SimClr.Training.Runs;

namespace SimClr.Training.Pretraining;

public enum PretrainStatus { Completed, Paused, Interrupted, Diverged }

public sealed record PretrainResult(PretrainStatus Status, TrainingPosition Position, string? LastCheckpoint, double ImagesPerSecond,
    double? LastKnnTop1, string? Problem);

/// <summary>Test hooks: called after each optimizer step with the global step and the store.</summary>
public sealed class TrainingHooks
{
    public Action<long, ParameterStore<float>>? AfterStep { get; init; }
}

public sealed class Pretrainer(IBackend<float> backend, RunConfig config, DatasetSplits data, RunDirectory run, MetricsLog metrics)
{
    public PretrainResult Run(SimClrModel<float> model, Storage<float> momentum, TrainingPosition start, double bestMetric,
        IProgressSink progress, CancellationToken cancel, TrainingHooks? hooks = null)
    {
        var train = data.Pretrain;
        int b = config.BatchSize;
        int stepsPerEpoch = EpochOrder.StepsPerEpoch(train.Count, b);
        var schedule = new LearningRateSchedule(config.PeakLearningRate(), config.WarmupEpochs, config.Epochs, stepsPerEpoch);
        if (schedule.WarmupClipped && start.Step == 0)
            progress.Message($"note: --warmup-epochs {config.WarmupEpochs} covers the whole {config.Epochs}-epoch run; warming up over the first {schedule.WarmupSteps} of {schedule.TotalSteps} steps instead");
        var spec = config.AugmentSpec();
        var store = model.Parameters;
        var checkpoints = new CheckpointStore(run.CheckpointDir, config.KeepLast);
        bool readEveryStep = backend.Info.Device == DeviceKind.Cpu;

        using var images = ResidentImages.Upload(backend, train);
        using var indices = backend.Allocate<int>(b);
        using var views = backend.Allocate<float>(2L * b * 3 * spec.OutHeight * spec.OutWidth);
        using var normScratch = backend.Allocate<float>(2L * store.SegmentCount);
        var viewBatch = views.AsTensor(new Shape(2 * b, 3, spec.OutHeight, spec.OutWidth), Layout.NCHW);
        var lossHost = new float[1];
        var hostIndices = new int[b];

        long step = start.Step;
        double? lastKnn = null;
        string? lastCheckpoint = null;
        double lastLoss = double.NaN;
        var clock = Stopwatch.StartNew();
        long imagesSeen = 0;
        int stopAt = config.StopAfter > 0 ? Math.Min(config.StopAfter, config.Epochs) : config.Epochs;

        for (int epoch = start.Epoch; epoch < config.Epochs; epoch++)
        {
            var order = EpochOrder.Permutation(config.Seed, epoch, train.Count);
            int firstStep = epoch == start.Epoch ? start.EpochStep : 0;
            double lossSum = 0;
            int lossCount = 0;
            var epochClock = Stopwatch.StartNew();
            for (int s = firstStep; s < stepsPerEpoch; s++)
            {
                if (cancel.IsCancellationRequested)
                {
                    var at = new TrainingPosition(epoch, step, s);
                    lastCheckpoint = checkpoints.Save(Info(at, lastLoss, bestMetric), w => ModelState.Save(w, store, momentum), isBest: false);
                    progress.Message($"interrupted at {at}; checkpoint {lastCheckpoint}");
                    return new PretrainResult(PretrainStatus.Interrupted, at, lastCheckpoint, Rate(imagesSeen, clock), lastKnn, null);
                }
                EpochOrder.Batch(order, s, b).CopyTo(hostIndices);
                backend.Upload(indices.AsTensor(), hostIndices);
                backend.AugmentViews(viewBatch.Rows(0, b), images.Images, indices.AsTensor(), images.Shape, spec, new AugmentKey(config.Seed, epoch, 0));
                backend.AugmentViews(viewBatch.Rows(b, b), images.Images, indices.AsTensor(), images.Shape, spec, new AugmentKey(config.Seed, epoch, 1));
                store.ZeroGradients();
                var loss = model.Forward(viewBatch);
                model.Backward();
                double lr = schedule.At(step);
                backend.LarsUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments, normScratch.AsTensor(),
                    new LarsHyper(lr, config.Momentum, config.WeightDecay, config.TrustCoefficient));
                step++;
                imagesSeen += b;
                bool read = readEveryStep || step % config.LossEvery == 0 || s == stepsPerEpoch - 1;
                double? stepLoss = null;
                if (read)
                {
                    backend.Download<float>(lossHost, loss);
                    stepLoss = lossHost[0];
                    if (!double.IsFinite(stepLoss.Value))
                    {
                        string when = readEveryStep || config.LossEvery == 1 ? $"at step {step}" : $"at step {step} (read every {config.LossEvery} steps; it became non-finite after step {step - config.LossEvery})";
                        string kept = checkpoints.Latest() is { } p ? $"the last good checkpoint is {p}" : "no checkpoint had been written yet";
                        string problem = $"the loss is {stepLoss.Value} {when}, epoch {epoch + 1}; the run stopped and {kept}";
                        metrics.Append(new MetricRecord("diverged", step, epoch, new Dictionary<string, double> { ["loss"] = stepLoss.Value, ["lr"] = lr }));
                        return new PretrainResult(PretrainStatus.Diverged, new TrainingPosition(epoch, step, s + 1), checkpoints.Latest(), Rate(imagesSeen, clock), lastKnn, problem);
                    }
                    lastLoss = stepLoss.Value;
                    lossSum += lastLoss;
                    lossCount++;
                    metrics.Append(new MetricRecord("step", step, epoch, new Dictionary<string, double> { ["loss"] = lastLoss, ["lr"] = lr }));
                }
                hooks?.AfterStep?.Invoke(step, store);
                progress.Update(step, epoch, Rate(imagesSeen, clock), stepLoss, lr);
            }

            int done = epoch + 1;
            double epochRate = (stepsPerEpoch - firstStep) * (double)b / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9);
            var epochValues = new Dictionary<string, double> { ["loss"] = lossCount > 0 ? lossSum / lossCount : double.NaN, ["images_per_second"] = epochRate, ["seconds"] = epochClock.Elapsed.TotalSeconds };
            metrics.Append(new MetricRecord("epoch", step, done, epochValues));
            bool isBest = false;
            if (config.Eval != EvalMode.None && (done == config.Epochs || (config.KnnEvery > 0 && done % config.KnnEvery == 0)))
            {
                var knn = KnnMonitor(model);
                lastKnn = knn.Top1;
                metrics.Append(new MetricRecord("knn", step, done, new Dictionary<string, double> { ["knn_top1"] = knn.Top1, ["knn_top5"] = knn.Top5 }));
                isBest = !(knn.Top1 <= bestMetric);
                if (isBest) bestMetric = knn.Top1;
                progress.Message($"epoch {done}/{config.Epochs}: loss {epochValues["loss"]:F4}, kNN top-1 {knn.Top1:P1}, {epochRate:F0} img/s");
            }
            else
            {
                progress.Message($"epoch {done}/{config.Epochs}: loss {epochValues["loss"]:F4}, {epochRate:F0} img/s");
            }
            var position = new TrainingPosition(done, step, 0);
            lastCheckpoint = checkpoints.Save(Info(position, lastLoss, bestMetric), w => ModelState.Save(w, store, momentum), isBest);
            Plots.Write(run.Root, metrics.Records);
            if (done == stopAt && done < config.Epochs)
            {
                progress.Message($"paused after epoch {done} (--stop-after); continue with --resume {lastCheckpoint}");
                return new PretrainResult(PretrainStatus.Paused, position, lastCheckpoint, Rate(imagesSeen, clock), lastKnn, null);
            }
        }
        return new PretrainResult(PretrainStatus.Completed, new TrainingPosition(config.Epochs, step, 0), lastCheckpoint, Rate(imagesSeen, clock), lastKnn, null);
    }

    private CheckpointInfo Info(TrainingPosition p, double loss, double best) => new(config, p, loss, best);

    private static double Rate(long images, Stopwatch clock) => images / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);

    private Accuracy KnnMonitor(SimClrModel<float> model)
    {
        var features = FeatureExtractor.Extract(backend, model, config, data);
        return KnnClassifier.Evaluate(backend, features.Train, features.Test, data.Train.ClassCount, config.KnnK, config.KnnTemperature);
    }
}
