// The kNN monitor of the SimCLR/InstDisc literature: cosine similarity of each test feature to every training
// feature (IBackend.CosineSimilarity, in query chunks so the [M, N] block stays small), the k most similar
// neighbours vote with weight exp(s/τ), and the class with the largest total wins. k = 200, τ = 0.1 by default.
using SimClr.Kernels;

namespace SimClr.Training.Evaluation;

public static class KnnClassifier
{
    /// <summary>Similarities are computed for this many test rows at a time.</summary>
    private const int ChunkRows = 256;

    public static Accuracy Evaluate(IBackend<float> backend, FeatureSet train, FeatureSet test, int classes, int k, double temperature) =>
        Evaluate(backend, train, test, classes, k, temperature, null, CancellationToken.None);

    /// <summary>Reports the test rows voted after each chunk; stops between chunks when <paramref name="cancel"/> is set.</summary>
    public static Accuracy Evaluate(IBackend<float> backend, FeatureSet train, FeatureSet test, int classes, int k, double temperature,
        IProgress<long>? progress, CancellationToken cancel)
    {
        if (train.Dim != test.Dim) throw new ArgumentException($"train features have {train.Dim} dims, test {test.Dim}");
        int n = train.Count, d = train.Dim;
        int chunk = Math.Min(ChunkRows, test.Count);
        using var bank = backend.Allocate<float>((long)n * d);
        using var queries = backend.Allocate<float>((long)chunk * d);
        using var sims = backend.Allocate<float>((long)chunk * n);
        backend.Upload(bank.AsTensor(new Shape(n, d)), train.Features);
        var host = new float[chunk * n];
        var votes = new double[classes];
        int top1 = 0, top5 = 0;
        for (int start = 0; start < test.Count; start += chunk)
        {
            int m = Math.Min(chunk, test.Count - start);
            var q = queries.AsTensor(new Shape(chunk, d)).Rows(0, m);
            backend.Upload(q, test.Features.AsSpan(start * d, m * d));
            var s = sims.AsTensor(new Shape(chunk, n)).Rows(0, m);
            backend.CosineSimilarity(s, q, bank.AsTensor(new Shape(n, d)), m, n, d);
            backend.Download(host.AsSpan(0, m * n), s);
            for (int i = 0; i < m; i++)
            {
                Vote(votes, host.AsSpan(i * n, n), train.Labels, k, temperature);
                int rank = Rank(votes, test.Labels[start + i]);
                if (rank == 0) top1++;
                if (rank < 5) top5++;
            }
            progress?.Report(start + m);
            cancel.ThrowIfCancellationRequested();
        }
        return new Accuracy((double)top1 / test.Count, (double)top5 / test.Count);
    }

    /// <summary>Weighted vote of the k nearest rows: votes[c] = Σ over the top-k similarities s with label c of exp(s/τ).
    /// Ties in similarity go to the lower training index, so the result does not depend on sort stability.</summary>
    internal static void Vote(Span<double> votes, ReadOnlySpan<float> similarities, ReadOnlySpan<int> labels, int k, double temperature)
    {
        votes.Clear();
        int kk = Math.Min(k, similarities.Length);
        // A bounded min-heap of (similarity, index) keeps the k best in O(N log k).
        var heap = new PriorityQueue<int, (float Sim, int NegIndex)>(kk + 1);
        for (int j = 0; j < similarities.Length; j++)
        {
            var key = (similarities[j], -j);
            if (heap.Count < kk) heap.Enqueue(j, key);
            else if (heap.TryPeek(out _, out var worst) && Compare(key, worst) > 0) heap.EnqueueDequeue(j, key);
        }
        while (heap.TryDequeue(out int j, out var p)) votes[labels[j]] += Math.Exp(p.Sim / temperature);
    }

    private static int Compare((float Sim, int NegIndex) a, (float Sim, int NegIndex) b) =>
        a.Sim != b.Sim ? a.Sim.CompareTo(b.Sim) : a.NegIndex.CompareTo(b.NegIndex);

    private static int Rank(ReadOnlySpan<double> votes, int label)
    {
        int rank = 0;
        for (int c = 0; c < votes.Length; c++)
            if (votes[c] > votes[label] || (votes[c] == votes[label] && c < label)) rank++;
        return rank;
    }
}
