// Pretraining on images without labels: a flat folder of PNGs (evaluation skipped with one note, or run on
// --eval-dataset), and STL-10's unlabeled_X.bin added with --stl10-unlabeled (on small files written here).
using System.Text.Json.Nodes;
using SimClr.Training.Cli;
using SimClr.Training.Data;
using StbImageWriteSharp;

namespace SimClr.Tests.Training;

public class UnlabeledPretrainingTests
{
    private static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    /// <summary>A flat folder of <paramref name="count"/> shapes images as PNG files, with no class folders.</summary>
    private static void WriteFlatFolder(string dir, int count)
    {
        Directory.CreateDirectory(dir);
        var shapes = ShapesDataset.Generate(count, 0, 3, 16).Train;
        for (int i = 0; i < count; i++)
        {
            using var f = File.Create(Path.Combine(dir, $"img-{i:D3}.png"));
            new ImageWriter().WritePng(shapes.Image(i).ToArray(), 16, 16, ColorComponents.RedGreenBlue, f);
        }
    }

    private static string[] Tiny(string outDir, params string[] extra) =>
    [
        "pretrain", "--width", "0.125", "--head-out", "16", "--batch-size", "16", "--epochs", "1", "--warmup-epochs", "0",
        "--progress", "quiet", "--device", "cpu", "--out", outDir, .. extra,
    ];

    [Fact]
    public void AFlatFolderOfUnlabeledPngsPretrainsAndEvaluationIsSkippedWithANote()
    {
        using var tmp = new Data.TempDir();
        string images = Path.Combine(tmp.Path, "images"), run = Path.Combine(tmp.Path, "run");
        WriteFlatFolder(images, 48);
        var r = Cli.Run(Tiny(run, "--dataset", "folder", "--data", images, "--image-size", "16"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Single(r.Out.Split('\n'), l => l.Contains("has no labels") && l.Contains("--eval-dataset"));
        Assert.Contains("folder-unlabeled: 48 images 16x16x3", r.Out);
        var summary = Json(Path.Combine(run, "summary.json"));
        Assert.Equal("completed", (string)summary["status"]!);
        Assert.False(summary.ContainsKey("linear_top1"));
        Assert.Equal("none", (string)Json(Path.Combine(run, "config.json"))["eval"]!);
        Assert.True(File.Exists(TinyRun.Checkpoint(run, 3)));

        // The same images with labelled evaluation data named separately (generated shapes, resized to 16 px).
        string evaluated = Path.Combine(tmp.Path, "evaluated");
        r = Cli.Run(Tiny(evaluated, "--dataset", "folder", "--data", images, "--image-size", "16", "--eval-dataset", "shapes", "--shapes-count", "120", "--linear-epochs", "5"));
        Assert.True(r.Code == 0, r.Err);
        summary = Json(Path.Combine(evaluated, "summary.json"));
        Assert.Equal("folder-unlabeled", (string)summary["dataset"]!);
        Assert.Equal("shapes-train", (string)summary["eval_dataset"]!);
        Assert.InRange((double)summary["linear_top1"]!, 0.0, 1.0);
        Assert.True(File.Exists(Path.Combine(evaluated, "embedding.png")));

        // An unlabeled folder cannot be evaluated on.
        var e = Cli.Run("linear-eval", "--checkpoint", TinyRun.Checkpoint(run, 3));
        Assert.Equal((int)ExitCode.BadInput, e.Code);
        Assert.Contains("needs labeled", e.Err);
    }

    private const int Side = 96, ImageBytes = Side * Side * 3;

    [Fact]
    public void Stl10UnlabeledImagesJoinPretraining()
    {
        using var tmp = new Data.TempDir();
        var dir = tmp.Sub("stl10_binary");
        var rng = new Random(1);
        byte[] Images(int n) { var b = new byte[n * ImageBytes]; rng.NextBytes(b); return b; }
        File.WriteAllBytes(Path.Combine(dir, "train_X.bin"), Images(8));
        File.WriteAllBytes(Path.Combine(dir, "train_y.bin"), [1, 2, 3, 4, 5, 6, 7, 8]);
        File.WriteAllBytes(Path.Combine(dir, "test_X.bin"), Images(4));
        File.WriteAllBytes(Path.Combine(dir, "test_y.bin"), [1, 2, 3, 4]);
        File.WriteAllBytes(Path.Combine(dir, "unlabeled_X.bin"), Images(8));
        string run = tmp.File("run");
        var r = Cli.Run(["pretrain", "--dataset", "stl10", "--data", tmp.Path, "--stl10-unlabeled", "8", "--width", "0.125", "--head-out", "8",
            "--batch-size", "8", "--epochs", "1", "--warmup-epochs", "0", "--eval", "none", "--progress", "quiet", "--device", "cpu", "--out", run]);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("stl10-train+unlabeled: 16 images 96x96x3", r.Out);
        Assert.True(File.Exists(TinyRun.Checkpoint(run, 2)));
        Assert.Equal(8, (int)Json(Path.Combine(run, "config.json"))["stl10_unlabeled"]!);

        var wrong = Cli.Run("pretrain", "--stl10-unlabeled", "5", "--out", tmp.File("never"));
        Assert.Equal((int)ExitCode.BadOption, wrong.Code);
        Assert.Contains("needs --dataset stl10", wrong.Err);
    }
}
