// Encoder features h for evaluation: each image goes through the augmentation op with an identity spec
// (full-image crop, no flip, no colour change, no blur), which only converts uint8 HWC to normalized float
// NCHW with the run's mean and std, and then through the encoder in inference mode (BN running statistics).
// Features are extracted once per evaluation and returned as host arrays for the kNN and the linear probe.
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Evaluation;

public static class FeatureExtractor
{
    /// <summary>The run's augmentation reduced to normalization.</summary>
    public static AugmentSpec IdentitySpec(AugmentSpec spec) => spec with
    {
        CropAreaMin = 1, CropAreaMax = 1, AspectMin = 1, AspectMax = 1,
        FlipProbability = 0, JitterProbability = 0, GrayscaleProbability = 0, BlurProbability = 0,
    };

    public static (FeatureSet Train, FeatureSet Test) Extract(IBackend<float> backend, SimClrModel<float> model, RunConfig config, DatasetSplits data) =>
        Extract(backend, model, config, data, null, CancellationToken.None);

    /// <summary>Features of both splits; <paramref name="progress"/> counts images over train, then test.</summary>
    public static (FeatureSet Train, FeatureSet Test) Extract(IBackend<float> backend, SimClrModel<float> model, RunConfig config, DatasetSplits data,
        IProgress<long>? progress, CancellationToken cancel) =>
        (Extract(backend, model, config, data.Train, progress, cancel),
         Extract(backend, model, config, data.Test, progress is null ? null : new ProgressRelay(n => progress.Report(data.Train.Count + n)), cancel));

    /// <summary>Features of <paramref name="set"/>; reports the images done after each chunk and stops between
    /// chunks when <paramref name="cancel"/> is set (OperationCanceledException).</summary>
    public static FeatureSet Extract(IBackend<float> backend, SimClrModel<float> model, RunConfig config, ImageDataset set,
        IProgress<long>? progress, CancellationToken cancel)
    {
        int chunk = model.InputShape[0], d = model.FeatureDim;
        using var features = backend.Allocate<float>((long)chunk * d);
        var featureBatch = features.AsTensor(new Shape(chunk, d));
        var host = new float[(long)set.Count * d];
        ForEachBatch(backend, set, config.AugmentSpec(), config.Seed, chunk, (start, views) =>
        {
            int rows = views.Shape[0];
            var f = featureBatch.Rows(0, rows);
            model.EncodeFeatures(f, views);
            backend.Download(host.AsSpan(start * d, rows * d), f);
            progress?.Report(start + rows);
        }, cancel);
        return new FeatureSet(host, set.Labels, d);
    }

    /// <summary>Walks <paramref name="set"/> in order, <paramref name="chunk"/> images at a time: each batch goes
    /// through the augmentation op with <paramref name="spec"/> reduced to normalization (IdentitySpec), and
    /// <paramref name="body"/> gets the index of its first image and its views [rows, 3, H, W] (rows ≤ chunk).
    /// Stops between batches when <paramref name="cancel"/> is set (OperationCanceledException). Every evaluation
    /// path (features, embed, the fine-tuned network's test pass) sees its images through here.</summary>
    public static void ForEachBatch(IBackend<float> backend, ImageDataset set, AugmentSpec spec, ulong seed, int chunk,
        Action<int, Tensor<float>> body, CancellationToken cancel)
    {
        var identity = IdentitySpec(spec);
        using var images = ResidentImages.Upload(backend, set);
        using var indices = backend.Allocate<int>(chunk);
        using var views = backend.Allocate<float>((long)chunk * 3 * identity.OutHeight * identity.OutWidth);
        var viewBatch = views.AsTensor(new Shape(chunk, 3, identity.OutHeight, identity.OutWidth), Layout.NCHW);
        var hostIndices = new int[chunk];
        for (int start = 0; start < set.Count; start += chunk)
        {
            int rows = Math.Min(chunk, set.Count - start);
            for (int i = 0; i < rows; i++) hostIndices[i] = start + i;
            var idx = indices.AsTensor().Rows(0, rows);
            backend.Upload(idx, hostIndices.AsSpan(0, rows));
            var v = viewBatch.Rows(0, rows);
            backend.AugmentViews(v, images.Images, idx, images.Shape, identity, new AugmentKey(seed, 0, 0));
            body(start, v);
            cancel.ThrowIfCancellationRequested();
        }
    }
}

/// <summary>Forwards reports synchronously (System.Progress posts them to a context, later and out of order).</summary>
internal sealed class ProgressRelay(Action<long> report) : IProgress<long>
{
    public void Report(long value) => report(value);
}
