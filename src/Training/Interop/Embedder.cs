// What embed computes: every image of a set through the augmentation op with the identity spec (uint8 HWC
// to normalized float NCHW with the run's mean and std, nothing random), then the encoder in inference mode
// (BN running statistics) for h, and with the head also z = g(h), the head in inference mode too. The same
// preprocessing as evaluation (FeatureExtractor), so embed's features are what linear-eval and knn see. Runs
// in chunks of the model's planned 2B rows; results come back as host arrays.
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;

namespace SimClr.Training.Interop;

/// <summary>Whether embed also writes the projection head's output z.</summary>
public enum ProjectionOutput { Without, With }

/// <summary>Row-major host matrices: features [Count, FeatureDim] and, when asked for, projections [Count, ProjectionDim].</summary>
public sealed record Embedding(int Count, float[] Features, int FeatureDim, float[]? Projections, int ProjectionDim);

public static class Embedder
{
    public static Embedding Run(IBackend<float> backend, SimClrModel<float> model, AugmentSpec spec, ulong seed, ImageDataset set,
        ProjectionOutput head, Action<long> progress)
    {
        int chunk = model.InputShape[0], d = model.FeatureDim, p = model.Head.OutDim;
        var features = new float[(long)set.Count * d];
        var projections = head == ProjectionOutput.With ? new float[(long)set.Count * p] : null;
        model.Encoder.SetMode(NormMode.Inference);
        model.Head.SetMode(NormMode.Inference);
        try
        {
            FeatureExtractor.ForEachBatch(backend, set, spec, seed, chunk, (start, views) =>
            {
                int rows = views.Shape[0];
                var h = model.Encoder.Forward(views);
                backend.Download(features.AsSpan(start * d, rows * d), h);
                if (projections is not null) backend.Download(projections.AsSpan(start * p, rows * p), model.Head.Forward(h));
                progress(start + rows);
            }, CancellationToken.None);
        }
        finally
        {
            model.Encoder.SetMode(NormMode.Training);
            model.Head.SetMode(NormMode.Training);
        }
        return new Embedding(set.Count, features, d, projections, p);
    }
}
