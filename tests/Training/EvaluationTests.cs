using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Evaluation;

namespace SimClr.Tests.Training;

public class EvaluationTests
{
    /// <summary>Gaussian clusters around random class centres in <paramref name="dim"/> dimensions.</summary>
    private static FeatureSet Clusters(int perClass, int classes, int dim, double spread, ulong seed, float[]? centres = null)
    {
        var rng = new PhiloxStream(seed);
        var c = centres ?? Centres(classes, dim, 1);
        var x = new float[perClass * classes * dim];
        var y = new int[perClass * classes];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = i % classes;
            for (int j = 0; j < dim; j++) x[i * dim + j] = c[y[i] * dim + j] + (float)(spread * rng.NextGaussian());
        }
        return new FeatureSet(x, y, dim);
    }

    private static float[] Centres(int classes, int dim, ulong seed)
    {
        var rng = new PhiloxStream(seed + 1000);
        var c = new float[classes * dim];
        for (int i = 0; i < c.Length; i++) c[i] = (float)rng.NextGaussian();
        return c;
    }

    [Fact]
    public void LinearProbeSeparatesSeparableClassesAndNotRandomLabels()
    {
        var centres = Centres(5, 16, 3);
        var train = Clusters(60, 5, 16, 0.3, 1, centres);
        var test = Clusters(20, 5, 16, 0.3, 2, centres);
        var good = LinearProbe.Evaluate(train, test, 5, new LinearProbeOptions(Epochs: 30, BatchSize: 32));
        Assert.True(good.Top1 > 0.95, $"separable clusters: {good}");
        Assert.Equal(1.0, good.Top5);

        // Labels unrelated to the features: the probe must not do much better than chance (1/5).
        var shuffled = new FeatureSet(test.Features, test.Labels.Select((_, i) => (int)(new PhiloxStream(77, (uint)i).NextUInt() % 5)).ToArray(), test.Dim);
        var bad = LinearProbe.Evaluate(train, shuffled, 5, new LinearProbeOptions(Epochs: 30, BatchSize: 32));
        Assert.True(bad.Top1 < 0.4, $"random labels: {bad}");
    }

    [Fact]
    public void RankCountsOnlyStrictlyBetterOrEarlierTiedClasses()
    {
        Assert.Equal(0, LinearProbe.RankOf([0.1f, 0.9f, 0.3f], 1));
        Assert.Equal(2, LinearProbe.RankOf([0.1f, 0.9f, 0.3f], 0));
        // A constant score ranks label c at c: a degenerate classifier gets 1/C top-1, not 100%.
        Assert.Equal(3, LinearProbe.RankOf([1f, 1f, 1f, 1f], 3));
    }

    [Fact]
    public void KnnVoteWeighsTheKNearestByExpSimilarityOverTau()
    {
        float[] sims = [0.9f, 0.1f, 0.8f, -0.5f, 0.85f];
        int[] labels = [0, 1, 1, 0, 2];
        var votes = new double[3];
        KnnClassifier.Vote(votes, sims, labels, k: 3, temperature: 0.1);
        Assert.Equal(Math.Exp(0.9f / 0.1), votes[0], 9);
        Assert.Equal(Math.Exp(0.8f / 0.1), votes[1], 9);
        Assert.Equal(Math.Exp(0.85f / 0.1), votes[2], 9);
        KnnClassifier.Vote(votes, sims, labels, k: 10, temperature: 1);
        Assert.Equal(Math.Exp(0.9f) + Math.Exp(-0.5f), votes[0], 9);
    }

    [Fact]
    public void KnnMatchesABruteForceCosineVote()
    {
        var centres = Centres(4, 8, 5);
        var train = Clusters(30, 4, 8, 0.8, 11, centres);
        var test = Clusters(10, 4, 8, 0.8, 12, centres);
        using var backend = new CpuBackend<float>();
        var acc = KnnClassifier.Evaluate(backend, train, test, 4, k: 15, temperature: 0.1);

        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            var q = test.Row(i).ToArray();
            var scored = Enumerable.Range(0, train.Count).Select(j => (Sim: Cosine(q, train.Row(j).ToArray()), j)).OrderByDescending(p => p.Sim).Take(15);
            var votes = new double[4];
            foreach (var (sim, j) in scored) votes[train.Labels[j]] += Math.Exp(sim / 0.1);
            if (Array.IndexOf(votes, votes.Max()) == test.Labels[i]) correct++;
        }
        Assert.Equal((double)correct / test.Count, acc.Top1, 9);
        Assert.True(acc.Top1 > 0.5);
    }

    private static double Cosine(float[] a, float[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
        return ab / Math.Sqrt(aa * bb);
    }
}
