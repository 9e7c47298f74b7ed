// The pieces of the evaluation protocols below the CLI: the fine-tuning network's gradient against central
// finite differences in double (every parameter tensor sampled, and the input), the class-balanced label subsets,
// and the embedding picture's PCA and t-SNE.
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Cli;
using SimClr.Training.Evaluation;
using SimClr.Training.Runs;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Training;

public class FineTuneTests
{
    [Fact]
    public void TheFineTuneStepsGradientMatchesFiniteDifferences()
    {
        using var net = new ClassifierNetwork<double>(Backend, ResNetArch.ResNet18, StemKind.Cifar, 3 / 64.0, classes: 4, height: 5, width: 7, batch: 6, seed: 11, InputGradient.Compute);
        var store = net.Parameters;
        Layers.LayerHarness.PerturbParameters(store, 3);
        // The classifier starts at zero, which would hide every encoder gradient: give it values first.
        store.SetHost("fc.weight", Random(store.View("fc.weight").Length, 8, -0.5, 0.5));
        var images = Tensor(Random(net.InputShape.Elements, 21), net.InputShape);
        using var labelStorage = Backend.Allocate<int>(6);
        var labels = labelStorage.AsTensor();
        Backend.Upload(labels, [0, 3, 1, 1, 2, 0]);
        double Loss() => Read(net.Forward(images, labels))[0];

        store.ZeroGradients();
        Loss();
        net.Backward();
        var imageGradient = Read(net.ImagesGradient);
        var rng = new Random(4);
        int checkedTensors = 0;
        foreach (var p in store.ParameterSlots)
        {
            var analytic = store.GetGradientHost(p.Name);
            CheckSampled(Loss, store.View(p.Name), analytic, SampleIndices(analytic, 3, rng), p.Name);
            checkedTensors++;
        }
        CheckSampled(Loss, images, imageGradient, SampleIndices(imageGradient, 12, rng), "images");
        Assert.Equal(store.ParameterSlots.Count, checkedTensors);
        Assert.Contains(store.ParameterSlots, p => p.Name == "fc.bias");
    }

    [Fact]
    public void TheClassifierStartsAtZeroAndClassifyLeavesTheRunningStatisticsAlone()
    {
        using var net = new ClassifierNetwork<double>(Backend, ResNetArch.ResNet18, StemKind.Cifar, 3 / 64.0, 3, 6, 6, 4, 2);
        Assert.All(net.Parameters.GetHost("fc.weight"), v => Assert.Equal(0, v));
        var images = Tensor(Random(net.InputShape.Elements, 5), net.InputShape);
        var before = Read(net.Parameters.Buffers);
        var logits = Read(net.Classify(images));
        Assert.Equal(4 * 3, logits.Length);
        Assert.All(logits, v => Assert.Equal(0, v));
        Assert.Equal(before, Read(net.Parameters.Buffers));
    }

    [Theory]
    [InlineData(0.01, 60)]
    [InlineData(0.012, 60)]
    [InlineData(0.05, 30)]
    [InlineData(0.1, 30)]
    [InlineData(1.0, 30)]
    public void ThePapersEpochsFollowTheLabelledShare(double share, int epochs) => Assert.Equal(epochs, FineTuneSettings.PaperEpochs(share));

    private static int[] Labels(params int[] perClass) => perClass.SelectMany((n, c) => Enumerable.Repeat(c, n)).ToArray();

    [Fact]
    public void LabelSubsetsAreClassBalancedAndAFunctionOfTheSeed()
    {
        var labels = Labels(100, 50, 200, 7);
        var a = LabelSubset.Draw(labels, 4, 0.1, null, seed: 3);
        Assert.Equal(new[] { 10, 5, 20, 1 }, Enumerable.Range(0, 4).Select(c => a.Indices.Count(i => labels[i] == c)));
        Assert.Equal(a.Indices, LabelSubset.Draw(labels, 4, 0.1, null, seed: 3).Indices);
        Assert.NotEqual(a.Indices, LabelSubset.Draw(labels, 4, 0.1, null, seed: 4).Indices);
        Assert.Equal(a.Indices.Order(), a.Indices);
        Assert.Equal(a.Count, a.Indices.Distinct().Count());

        var k = LabelSubset.Draw(labels, 4, null, 5, seed: 1);
        Assert.All(Enumerable.Range(0, 4), c => Assert.Equal(5, k.Indices.Count(i => labels[i] == c)));
        var e = Assert.Throws<UserError>(() => LabelSubset.Draw(labels, 4, null, 8, seed: 1));
        Assert.Contains("--labels-per-class", e.Message);
        Assert.Contains("7 training images", e.Message);
    }

    [Fact]
    public void ALabelSubsetFileReadsBackExactlyAndBadFilesAreNamed()
    {
        using var tmp = new Data.TempDir();
        var labels = Labels(30, 30, 30);
        var a = LabelSubset.Draw(labels, 3, 0.2, null, seed: 9);
        string path = tmp.File("label-subset.txt");
        a.Write(path, "test-set");
        Assert.StartsWith("# 18 labelled images of test-set", File.ReadAllText(path));
        Assert.Equal(a.Indices, LabelSubset.Read(path, labels.Length).Indices);

        foreach (var (text, why) in new[] { ("1\n2\n2\n", "repeats"), ("1\nx\n", "line 2"), ("5\n90\n", "line 2"), ("# nothing\n", "no indices") })
        {
            File.WriteAllText(path, text);
            var e = Assert.Throws<UserError>(() => LabelSubset.Read(path, labels.Length));
            Assert.Contains(path, e.Message);
            Assert.Contains(why, e.Message);
        }
    }

    [Fact]
    public void PcaFindsTheLargestVariancesOfTheCovariance()
    {
        // 60 points in 80 dimensions with three strong directions and some noise: k = 50 < D, so the subspace
        // iteration runs; its top variances must be the covariance's top eigenvalues.
        var rng = new Random(7);
        int n = 60, d = 80;
        var x = new double[n, d];
        for (int i = 0; i < n; i++)
        {
            double a = 5 * Gauss(rng), b = 3 * Gauss(rng), c = 2 * Gauss(rng);
            for (int j = 0; j < d; j++) x[i, j] = a * Math.Sin(j) + b * Math.Cos(0.5 * j) + c * (j % 3 - 1) + 0.1 * Gauss(rng);
        }
        var scores = EmbeddingPlot.Pca(x, 50);
        var cov = new double[d, d];
        var mean = Enumerable.Range(0, d).Select(j => Enumerable.Range(0, n).Average(i => x[i, j])).ToArray();
        for (int p = 0; p < d; p++)
            for (int q = 0; q < d; q++)
                for (int i = 0; i < n; i++) cov[p, q] += (x[i, p] - mean[p]) * (x[i, q] - mean[q]);
        var eig = EmbeddingPlot.Jacobi(cov).Values.OrderDescending().ToArray();
        for (int t = 0; t < 5; t++)
        {
            double variance = Enumerable.Range(0, n).Sum(i => scores[i, t] * scores[i, t]);
            Assert.True(Math.Abs(variance - eig[t]) <= 1e-6 * eig[0], $"component {t}: variance {variance}, eigenvalue {eig[t]}");
        }
        double cross = Enumerable.Range(0, n).Sum(i => scores[i, 0] * scores[i, 1]);
        Assert.True(Math.Abs(cross) < 1e-6 * eig[0], $"components 0 and 1 are not uncorrelated: {cross}");
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    [Fact]
    public void TsneKeepsSeparatedClustersApartAndIsDeterministic()
    {
        var rng = new Random(3);
        int perClass = 40, classes = 3, d = 10;
        var x = new double[perClass * classes, d];
        var y = new int[perClass * classes];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = i % classes;
            for (int j = 0; j < d; j++) x[i, j] = (j == y[i] ? 6 : 0) + Gauss(rng);
        }
        var a = EmbeddingPlot.Tsne(x);
        Assert.Equal(a, EmbeddingPlot.Tsne(x));
        int same = 0;
        for (int i = 0; i < y.Length; i++)
        {
            int nearest = Enumerable.Range(0, y.Length).Where(j => j != i)
                .MinBy(j => Math.Pow(a[i, 0] - a[j, 0], 2) + Math.Pow(a[i, 1] - a[j, 1], 2));
            if (y[nearest] == y[i]) same++;
        }
        Assert.True(same >= 0.95 * y.Length, $"only {same} of {y.Length} points have a nearest neighbour of their class in the embedding");
    }

    [Fact]
    public void DiscriminantsFitOnTrainSeparateClassesThatDifferInALowVarianceDirection()
    {
        // Three classes differing only along dimension 0 by ±1, while dimensions 1..5 carry noise of std 4: PCA's
        // first axes are noise, the leading discriminant is dimension 0.
        var rng = new Random(2);
        double[,] Make(int n, int[] y)
        {
            var x = new double[n, 6];
            for (int i = 0; i < n; i++)
            {
                y[i] = i % 3;
                x[i, 0] = y[i] - 1 + 0.1 * Gauss(rng);
                for (int j = 1; j < 6; j++) x[i, j] = 4 * Gauss(rng);
            }
            return x;
        }
        var ytrain = new int[90];
        var ytest = new int[60];
        var train = Make(90, ytrain);
        var test = Make(60, ytest);
        var z = EmbeddingPlot.Lda(train, ytrain, test);
        var centroid = Enumerable.Range(0, 3).Select(c => Enumerable.Range(0, 60).Where(i => ytest[i] == c).Average(i => z[i, 0])).ToArray();
        int correct = Enumerable.Range(0, 60).Count(i => Enumerable.Range(0, 3).MinBy(c => Math.Abs(z[i, 0] - centroid[c])) == ytest[i]);
        Assert.True(correct >= 57, $"{correct} of 60 test points nearest their class centroid on the first discriminant");
    }

    [Fact]
    public void TheEmbeddingPictureIsAPngAndSubsetsLargeSetsByClass()
    {
        using var tmp = new Data.TempDir();
        var labels = Enumerable.Range(0, 30).Select(i => i % 3).ToArray();
        var features = Enumerable.Range(0, 30 * 4).Select(i => (float)((i / 4 % 3) * 3 + Math.Sin(i))).ToArray();
        string png = tmp.File("embedding.png");
        EmbeddingPlot.Write(png, features, labels, ["a", "b", "c"]);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
        EmbeddingPlot.Write(png, features, labels, ["a", "b", "c"], "with discriminants", features, labels);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);

        var many = Enumerable.Range(0, 5000).Select(i => i < 4000 ? 0 : 1).ToArray();
        var subset = EmbeddingPlot.Subset(many, 1000);
        Assert.Equal(1000, subset.Length);
        Assert.Equal(800, subset.Count(i => many[i] == 0));
        Assert.Equal(subset, EmbeddingPlot.Subset(many, 1000));
    }
}
