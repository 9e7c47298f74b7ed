// The semi-supervised fine-tuning protocol of SimCLR (Chen et al. 2020, appendix B.5, and the reference code's
// finetune mode): the whole encoder plus a new zero-initialized linear layer trained with labels on a
// class-balanced subset of the training split. Nesterov momentum 0.9, learning rate 0.05·B/256 decayed with a
// cosine to zero and no warmup, no weight decay or other regularization, and only random resized crops with
// horizontal flips as augmentation (no colour, no blur); 60 epochs for 1 % of the labels, 30 for 10 %. BN runs in
// training mode over the whole batch (the paper's batch is 4096 with BN statistics over all of it, "global BN";
// one process here has the whole batch). Incomplete final batches are dropped so every step has B rows.
// The test split is then classified with BN's running statistics on the whole, unaugmented image, and scored by
// top-1 and top-5 accuracy. The same protocol runs from the pretrained encoder and from a random-init one.
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;

namespace SimClr.Training.Evaluation;

/// <summary>The fine-tuning protocol's settings. <see cref="BatchSize"/> is capped at the labelled count.</summary>
public sealed record FineTuneSettings(int Epochs, int BatchSize, double BaseLearningRate, ulong Seed)
{
    public const double Momentum = 0.9;
    public const double PaperBaseLearningRate = 0.05;

    /// <summary>B · base / 256, the paper's scaling.</summary>
    public double PeakLearningRate(int batch) => BaseLearningRate * batch / 256.0;

    /// <summary>Below this labelled share the paper's 1 % setting applies, above it the 10 % one: the geometric
    /// middle of the two, so a share rounded up by per-class counts (24 of 2,000 is 1.2 %) keeps its setting.</summary>
    public const double OnePercentSettingBelow = 0.0316;

    /// <summary>The paper's epochs: 60 for its 1 % subset, 30 for 10 %.</summary>
    public static int PaperEpochs(double labelledShare) => labelledShare < OnePercentSettingBelow ? 60 : 30;
}

/// <summary>One fine-tuning run's outcome: test accuracy, the fine-tuned encoder's features of the test split and of
/// (at most the first EmbeddingPlot.MaxFitPoints images of) the training split.</summary>
public sealed record FineTuneResult(Accuracy Test, FeatureSet TestFeatures, FeatureSet TrainFeatures, double FinalLoss, int Steps);

public static class FineTuner
{
    public static FineTuneResult Run(IBackend<float> backend, ClassifierNetwork<float> network, RunConfig encoderConfig, DatasetSplits data,
        LabelSubset subset, FineTuneSettings s, IProgressSink progress, string label, CancellationToken cancel)
    {
        int b = network.InputShape[0];
        int steps = EpochOrder.StepsPerEpoch(subset.Count, b);
        long total = (long)steps * s.Epochs;
        var spec = TrainSpec(encoderConfig);
        var labelled = data.Train.Subset(subset.Indices, data.Train.Name + "-labelled");
        var store = network.Parameters;
        double peak = s.PeakLearningRate(b);
        bool readEveryStep = backend.Info.Device == DeviceKind.Cpu;

        using var images = ResidentImages.Upload(backend, labelled);
        using var momentum = store.AllocateStateBuffer();
        using var indices = backend.Allocate<int>(b);
        using var labels = backend.Allocate<int>(b);
        using var views = backend.Allocate<float>((long)b * 3 * spec.OutHeight * spec.OutWidth);
        var viewBatch = views.AsTensor(new Shape(b, 3, spec.OutHeight, spec.OutWidth), Layout.NCHW);
        var hostIndices = new int[b];
        var hostLabels = new int[b];
        var lossHost = new float[1];
        double lastLoss = double.NaN;
        long step = 0;
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < s.Epochs; epoch++)
        {
            var order = EpochOrder.Permutation(s.Seed, epoch, labelled.Count);
            for (int k = 0; k < steps; k++, step++)
            {
                if (cancel.IsCancellationRequested)
                    throw new UserError($"fine-tuning {label} interrupted at step {step} of {total}; no results were written", ExitCode.Interrupted);
                var batch = EpochOrder.Batch(order, k, b);
                batch.CopyTo(hostIndices);
                for (int i = 0; i < b; i++) hostLabels[i] = labelled.Labels[batch[i]];
                backend.Upload(indices.AsTensor(), hostIndices);
                backend.Upload(labels.AsTensor(), hostLabels);
                backend.AugmentViews(viewBatch, images.Images, indices.AsTensor(), images.Shape, spec, new AugmentKey(s.Seed, epoch, 0));
                store.ZeroGradients();
                var loss = network.Forward(viewBatch, labels.AsTensor());
                network.Backward();
                double lr = peak * 0.5 * (1 + Math.Cos(Math.PI * step / total));
                backend.SgdMomentumUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments,
                    new SgdHyper(lr, FineTuneSettings.Momentum, 0.0, MomentumKind.Nesterov));
                double? read = null;
                if (readEveryStep || (step + 1) % 10 == 0 || k == steps - 1)
                {
                    backend.Download<float>(lossHost, loss);
                    read = lastLoss = lossHost[0];
                    if (!double.IsFinite(lastLoss))
                        throw new UserError($"fine-tuning {label}: the loss is {lastLoss} at step {step + 1} (epoch {epoch + 1}); the encoder's weights or the learning rate {lr:G3} are unusable", ExitCode.Diverged);
                }
                progress.Update(step + 1, epoch, (step + 1) * (double)b / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), read, lr);
            }
            if ((epoch + 1) % 10 == 0 || epoch + 1 == s.Epochs)
                progress.Message($"fine-tune {label}: epoch {epoch + 1}/{s.Epochs}, loss {lastLoss:F4}");
        }
        var (accuracy, features) = Score(backend, network, encoderConfig, data.Test);
        var (_, trainFeatures) = Score(backend, network, encoderConfig, data.Train.Take(EmbeddingPlot.MaxFitPoints));
        return new FineTuneResult(accuracy, features, trainFeatures, lastLoss, (int)step);
    }

    /// <summary>The augmentation of fine-tuning: the encoder's own crop range and normalization (so inputs look
    /// like those it was pretrained on), horizontal flips, nothing else.</summary>
    public static AugmentSpec TrainSpec(RunConfig encoderConfig) => encoderConfig.AugmentSpec() with
    {
        FlipProbability = 0.5f, JitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
    };

    /// <summary>Top-1/top-5 of the network on <paramref name="test"/> (whole images, inference mode), and its features h.</summary>
    public static (Accuracy, FeatureSet) Score(IBackend<float> backend, ClassifierNetwork<float> network, RunConfig encoderConfig, ImageDataset test)
    {
        int chunk = network.InputShape[0], classes = network.Classes, d = network.FeatureDim;
        var logits = new float[chunk * classes];
        var features = new float[(long)test.Count * d];
        int top1 = 0, top5 = 0;
        FeatureExtractor.ForEachBatch(backend, test, encoderConfig.AugmentSpec(), encoderConfig.Seed, chunk, (start, views) =>
        {
            int rows = views.Shape[0];
            var y = network.Classify(views);
            backend.Download<float>(logits.AsSpan(0, rows * classes), y);
            backend.Download<float>(features.AsSpan(start * d, rows * d), network.Features);
            for (int i = 0; i < rows; i++)
            {
                int rank = LinearProbe.RankOf(logits.AsSpan(i * classes, classes), test.Labels[start + i]);
                if (rank == 0) top1++;
                if (rank < 5) top5++;
            }
        }, CancellationToken.None);
        return (new Accuracy((double)top1 / test.Count, (double)top5 / test.Count), new FeatureSet(features, test.Labels, d));
    }

    /// <summary>The network for <paramref name="encoderConfig"/>'s encoder with a classifier over <paramref name="classes"/>.</summary>
    public static ClassifierNetwork<float> Build(IBackend<float> backend, RunConfig encoderConfig, int classes, int batch)
    {
        try
        {
            return new ClassifierNetwork<float>(backend, ModelState.Arch(encoderConfig), ModelState.Stem(encoderConfig), encoderConfig.Width, classes,
                encoderConfig.ImageSize, encoderConfig.ImageSize, batch, encoderConfig.Seed);
        }
        catch (ArgumentException e)
        {
            throw new UserError($"cannot build the fine-tuning network: {e.Message}", ExitCode.BadOption);
        }
    }
}
