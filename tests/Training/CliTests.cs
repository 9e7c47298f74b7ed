using SimClr.Training.Cli;

namespace SimClr.Tests.Training;

/// <summary>Runs the command line in-process and captures what it prints.</summary>
internal static class Cli
{
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(null, args);

    public static (int Code, string Out, string Err) Run(SimClr.Training.Pretraining.TrainingHooks? hooks, params string[] args) =>
        Run(hooks, CancellationToken.None, args);

    public static (int Code, string Out, string Err) Run(SimClr.Training.Pretraining.TrainingHooks? hooks, CancellationToken cancel, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, new CliContext(o, e, cancel) { Hooks = hooks });
        return (code, o.ToString(), e.ToString());
    }
}

public class CliTests
{
    [Theory]
    [InlineData("--batch-size", "0", "--batch-size")]
    [InlineData("--batch-size", "1", "--batch-size")]
    [InlineData("--epochs", "0", "--epochs")]
    [InlineData("--temperature", "0", "--temperature")]
    [InlineData("--temperature", "-1", "--temperature")]
    [InlineData("--width", "0.01", "--width")]
    [InlineData("--device", "tpu", "--device")]
    [InlineData("--flip", "1.5", "--flip")]
    [InlineData("--hue", "0.7", "--hue")]
    [InlineData("--base-lr", "-0.1", "--base-lr")]
    [InlineData("--knn-k", "0", "--knn-k")]
    [InlineData("--crop-min", "0", "--crop-min")]
    public void ImpossibleOptionsFailWithOneLineNamingTheOption(string option, string value, string named)
    {
        var (code, _, err) = Cli.Run("pretrain", option, value, "--out", Path.Combine(Path.GetTempPath(), "never-created-" + Guid.NewGuid()));
        Assert.Equal((int)ExitCode.BadOption, code);
        Assert.Contains(named, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("error:", err);
    }

    [Theory]
    [InlineData("--arch", "resnet99")]
    [InlineData("--dataset", "imagenet")]
    [InlineData("--epochs", "many")]
    [InlineData("--no-such-option", "1")]
    public void UnknownValuesAreParseErrors(string option, string value)
    {
        var (code, _, err) = Cli.Run(option, value);
        Assert.Equal((int)ExitCode.BadOption, code);
        Assert.StartsWith("error:", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void ImpossibleAugmentationRangesAreRejected()
    {
        var (code, _, err) = Cli.Run("augment-preview", "--crop-min", "0.9", "--crop-max", "0.5", "--output", Path.Combine(Path.GetTempPath(), Guid.NewGuid() + ".png"));
        Assert.Equal((int)ExitCode.BadOption, code);
        Assert.Contains("crop area", err);
    }

    [Fact]
    public void MissingDataFoldersNameThePath()
    {
        string missing = Path.Combine(Path.GetTempPath(), "no-such-dataset-" + Guid.NewGuid());
        foreach (var dataset in new[] { "cifar10", "cifar100", "stl10", "fashion-mnist", "folder" })
        {
            var (code, _, err) = Cli.Run("pretrain", "--dataset", dataset, "--data", missing, "--out", missing + "-out");
            Assert.Equal((int)ExitCode.BadInput, code);
            Assert.Contains(missing, err);
            Assert.Single(err.TrimEnd().Split('\n'));
            Assert.False(Directory.Exists(missing + "-out"));
        }
    }

    [Fact]
    public void TruncatedOrMislabeledDatasetFilesAreNamed()
    {
        string root = Directory.CreateTempSubdirectory("simclr-cifar").FullName;
        string outDir = root + "-out";
        try
        {
            string bin = Path.Combine(root, "cifar-10-batches-bin");
            Directory.CreateDirectory(bin);
            File.WriteAllBytes(Path.Combine(bin, "test_batch.bin"), new byte[30_730_000]);
            string first = Path.Combine(bin, "data_batch_1.bin");
            File.WriteAllBytes(first, new byte[1000]);
            var (code, _, err) = Cli.Run("pretrain", "--dataset", "cifar10", "--data", root, "--out", outDir);
            Assert.Equal((int)ExitCode.BadInput, code);
            Assert.Contains(first, err);
            Assert.Contains("truncated", err);
            Assert.Single(err.TrimEnd().Split('\n'));

            var records = new byte[30_730_000];
            records[3073 * 5] = 10; // record 5 claims class 10 of CIFAR-10's 0..9
            File.WriteAllBytes(first, records);
            (code, _, err) = Cli.Run("pretrain", "--dataset", "cifar10", "--data", root, "--out", outDir);
            Assert.Equal((int)ExitCode.BadInput, code);
            Assert.Contains(first, err);
            Assert.Contains("label 10", err);
            Assert.False(Directory.Exists(outDir));

            string fm = Path.Combine(root, "fm");
            Directory.CreateDirectory(fm);
            File.WriteAllBytes(Path.Combine(fm, "train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 0, 0]);
            (code, _, err) = Cli.Run("pretrain", "--dataset", "fashion-mnist", "--data", fm, "--out", outDir);
            Assert.Equal((int)ExitCode.BadInput, code);
            Assert.Contains(fm, err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void AugmentPreviewWritesAPng()
    {
        string png = Path.Combine(Path.GetTempPath(), $"simclr-preview-{Guid.NewGuid():N}.png");
        try
        {
            var (code, output, err) = Cli.Run("augment-preview", "--output", png, "--count", "4", "--shapes-count", "40", "--device", "cpu");
            Assert.True(code == 0, err);
            Assert.Contains("wrote", output);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
        }
        finally { File.Delete(png); }
    }

    [Fact]
    public void BatchLargerThanTheDatasetIsRejected()
    {
        string outDir = Path.Combine(Path.GetTempPath(), "simclr-batch-" + Guid.NewGuid());
        var (code, _, err) = Cli.Run("pretrain", "--shapes-count", "40", "--batch-size", "64", "--out", outDir);
        Assert.Equal((int)ExitCode.BadOption, code);
        Assert.Contains("--batch-size", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void ExplicitCudaWithoutADeviceSaysWhyAndStops()
    {
        if (SimClr.Kernels.Cuda.CudaInfo.Probe().Available) Assert.Skip("a CUDA device is present: the unavailable path cannot be exercised here");
        string outDir = Path.Combine(Path.GetTempPath(), "simclr-cuda-" + Guid.NewGuid());
        var (code, _, err) = Cli.Run("pretrain", "--device", "cuda", "--shapes-count", "40", "--batch-size", "8", "--out", outDir);
        Assert.Equal((int)ExitCode.BadOption, code);
        Assert.Contains("--device", err);
        Assert.Contains("cannot be used", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void InfoReportsTheCpuAndWhyThereIsNoCudaNamingEachLibraryOnce()
    {
        var (code, output, _) = Cli.Run("info");
        Assert.Equal(0, code);
        Assert.Contains("cpu:", output);
        var lines = output.Split('\n');
        Assert.True(output.Contains("CUDA: not available (") || output.Contains("CUDA: available"), output);
        foreach (var library in new[] { "NVRTC", "cuBLAS", "cuDNN" })
            Assert.Single(lines, l => l.TrimStart().StartsWith(library + ":", StringComparison.Ordinal));
    }

    [Fact]
    public void WithoutCudaTheCpuIsAnnouncedInOneShortLine()
    {
        if (SimClr.Kernels.Cuda.CudaInfo.Probe().Available) Assert.Skip("a CUDA device is present: the CPU fallback is not taken here");
        string png = Path.Combine(Path.GetTempPath(), $"simclr-device-{Guid.NewGuid():N}.png");
        try
        {
            var (code, output, err) = Cli.Run("augment-preview", "--output", png, "--count", "2", "--shapes-count", "40");
            Assert.True(code == 0, err);
            var cudaLines = output.Split('\n').Where(l => l.Contains("CUDA", StringComparison.OrdinalIgnoreCase)).ToList();
            Assert.Single(cudaLines);
            Assert.StartsWith("device: cpu (", cudaLines[0]);
            Assert.True(cudaLines[0].TrimEnd().Length <= 100, cudaLines[0]);

            (code, output, err) = Cli.Run("augment-preview", "--output", png, "--count", "2", "--shapes-count", "40", "--verbose");
            Assert.True(code == 0, err);
            Assert.Contains("tried", output.Split('\n').Single(l => l.StartsWith("device: cpu (", StringComparison.Ordinal)));
        }
        finally { File.Delete(png); }
    }

    [Theory]
    [InlineData("knn", "--knn-k", "--linear-epochs")]
    [InlineData("linear-eval", "--linear-epochs", "--knn-k")]
    [InlineData("linear-eval", "--checkpoint", "--epochs")]
    [InlineData("export", "--output", "--dataset")]
    [InlineData("embed", "--split", "--epochs")]
    [InlineData("augment-preview", "--crop-min", "--batch-size")]
    [InlineData("pretrain", "--knn-every", "--checkpoint")]
    [InlineData("pretrain", "--config", "--label-fraction")]
    [InlineData("finetune", "--label-fraction", "--linear-epochs")]
    [InlineData("finetune", "--labels-per-class", "--stl10-unlabeled")]
    [InlineData("linear-eval", "--out", "--name")]
    [InlineData("knn", "--out", "--stl10-unlabeled")]
    public void EachCommandOffersOnlyTheOptionsItReads(string command, string offered, string notOffered)
    {
        var (code, output, _) = Cli.Run(command, "--help");
        Assert.Equal(0, code);
        Assert.Contains(offered + " ", output);
        Assert.DoesNotContain(notOffered + " ", output);
        var (refused, _, err) = Cli.Run(command, notOffered, "1");
        Assert.Equal((int)ExitCode.BadOption, refused);
        Assert.Contains(notOffered, err);
    }
}
