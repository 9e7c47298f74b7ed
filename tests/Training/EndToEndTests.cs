using System.Text.Json.Nodes;

namespace SimClr.Tests.Training;

/// <summary>Whole runs through the command line: pretraining, then the linear probe on frozen features for the
/// SimCLR encoder and for a random-init encoder of the same architecture and seed. These are the slowest tests
/// of the suite (see the report in the trainer's issue note for their durations).</summary>
public class EndToEndTests
{
    private static JsonObject Summary(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!.AsObject();

    [Fact]
    public void ShortDefaultRunBeatsTheRandomEncoderByFifteenPoints()
    {
        string dir = TinyRun.NewDir("default");
        try
        {
            var r = Cli.Run("--out", dir, "--progress", "quiet", "--epochs", ShortDefault.Epochs, "--knn-every", "0", "--device", "cpu");
            Assert.True(r.Code == 0, r.Err);
            var s = Summary(dir);
            double simclr = (double)s["linear_top1"]!, random = (double)s["random_linear_top1"]!;
            Assert.True(simclr - random >= 0.15, $"SimCLR linear top-1 {simclr:P1} vs random-init {random:P1}: margin below 15 points");
            Assert.True(File.Exists(Path.Combine(dir, "loss.png")));
            Assert.True(File.Exists(Path.Combine(dir, "lr.png")));
            Assert.True(File.Exists(Path.Combine(dir, "knn.png")));
            Assert.True(File.Exists(Path.Combine(dir, "dashboard.png")));
            Assert.True(File.Exists(Path.Combine(dir, "metrics.csv")));
            Assert.Single(Directory.EnumerateFiles(dir, SimClr.Training.Runs.TensorBoardLog.FilePrefix + "*"));
            Assert.Equal("completed", (string)s["status"]!);
            // Explicitly on the CPU: on a GPU host `--device auto` would train on CUDA, where the margins differ.
            Assert.StartsWith("cpu", (string)s["device"]!);
            Assert.True((double)s["knn_top1"]! > 0);
            Assert.True((double)s["images_per_second"]! > 0);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void FashionMnistSubsetBeatsTheRandomEncoder()
    {
        const string data = "/usr/share/datasets/fashion-mnist";
        if (!Directory.Exists(data)) Assert.Skip($"{data} is missing (install Debian's dataset-fashion-mnist)");
        string dir = TinyRun.NewDir("fmnist");
        try
        {
            var r = Cli.Run([.. FashionMnistShort.Args, "--out", dir, "--progress", "quiet"]);
            Assert.True(r.Code == 0, r.Err);
            var s = Summary(dir);
            double simclr = (double)s["linear_top1"]!, random = (double)s["random_linear_top1"]!;
            TestContext.Current.SendDiagnosticMessage($"Fashion-MNIST: SimCLR {simclr:P2}, random-init {random:P2}");
            Assert.True(simclr - random >= 0.02, $"SimCLR linear top-1 {simclr:P2} vs random-init {random:P2}: margin below 2 points");
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>The short version of the no-argument run: the same preset with fewer epochs.</summary>
internal static class ShortDefault
{
    public const string Epochs = "8";
}

internal static class FashionMnistShort
{
    /// <summary>The README's Fashion-MNIST command: the preset, on the CPU (a GPU host's `--device auto` would train on CUDA).</summary>
    public static readonly string[] Args = ["--preset", "fashion-mnist-cpu", "--device", "cpu"];
}
