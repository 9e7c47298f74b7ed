// The evaluation protocols as progress phases: feature extraction (images), the kNN vote (test images) and
// the linear probe (epochs), each one row of the display with its own bar and time left, and each stopping
// at its next chunk or epoch when Ctrl-C cancels (OperationCanceledException). Commands that evaluate
// (pretrain's final evaluation and kNN monitor, linear-eval, knn, fine-tuning) go through these.
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Runs;

namespace SimClr.Training.Evaluation;

public static class EvaluationProgress
{
    public static (FeatureSet Train, FeatureSet Test) Features(IProgressHost host, string title, IBackend<float> backend, SimClrModel<float> model,
        RunConfig config, DatasetSplits data, CancellationToken cancel, RowEnd end = RowEnd.Keep)
    {
        using var row = host.Begin(title, data.Train.Count + data.Test.Count, "images", end: end);
        return FeatureExtractor.Extract(backend, model, config, data, row, cancel);
    }

    public static Accuracy Knn(IProgressHost host, string title, IBackend<float> backend, (FeatureSet Train, FeatureSet Test) features, int classes,
        RunConfig config, CancellationToken cancel, RowEnd end = RowEnd.Keep)
    {
        using var row = host.Begin(title, features.Test.Count, "images", end: end);
        return KnnClassifier.Evaluate(backend, features.Train, features.Test, classes, config.KnnK, config.KnnTemperature, row, cancel);
    }

    public static Accuracy Linear(IProgressHost host, string title, (FeatureSet Train, FeatureSet Test) features, int classes,
        LinearProbeOptions options, CancellationToken cancel)
    {
        using var row = host.Begin(title, options.Epochs, "epochs");
        return LinearProbe.Evaluate(features.Train, features.Test, classes, options, row, cancel);
    }
}
