// Options validated as a whole: every floating-point option refuses NaN and ±Infinity by name (Infinity for
// brightness used to end as a NaN loss), sizes that would overflow what they allocate are refused, choice
// errors name the option and list the choices, and --out/--name/--resume cannot escape runs/ or overwrite
// another run: --resume into another folder continues into a copy and says so.
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Config;

namespace SimClr.Tests.Robustness;

public class OptionValidationTests(EpochOneRun epochOne)
{
    private static readonly string[] FloatingOptions =
    [
        "--width", "--temperature", "--base-lr", "--warmup-epochs", "--weight-decay", "--momentum", "--trust-coefficient",
        "--knn-temperature", "--linear-lr", "--linear-weight-decay", "--color-strength", "--crop-min", "--crop-max",
        "--aspect-min", "--aspect-max", "--flip", "--jitter", "--brightness", "--contrast", "--saturation", "--hue",
        "--grayscale", "--blur", "--blur-sigma-min", "--blur-sigma-max",
    ];

    public static TheoryData<string, string> NonFiniteValues()
    {
        var data = new TheoryData<string, string>();
        foreach (var o in FloatingOptions)
            foreach (var v in new[] { "NaN", "Infinity", "-Infinity", "1e300" })
                data.Add(o, v);
        return data;
    }

    [Theory]
    [MemberData(nameof(NonFiniteValues))]
    public void EveryFloatingPointOptionRefusesNonFiniteAndAbsurdValuesByName(string option, string value)
    {
        string outDir = TinyRun.NewDir("nonfinite-option");
        // option=value, so "-Infinity" is read as the value and not as another option.
        var r = Cli.Run("pretrain", $"{option}={value}", "--out", outDir);
        Hostile.AssertOneLine(r, (int)ExitCode.BadOption, option);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void TheListAboveIsEveryFloatingPointOptionOfPretrain()
    {
        // Any option that takes a number with a fraction and is not listed would escape the test above.
        var help = Cli.Run("pretrain", "--help").Out;
        var offered = help.Split('\n').Select(l => l.TrimStart()).Where(l => l.StartsWith("--", StringComparison.Ordinal)).Select(l => l.Split(' ', 2)[0]).ToList();
        foreach (var o in offered)
        {
            // A second, impossible option makes every run that parses stop at validation, before any work.
            var r = Cli.Run("pretrain", o, "0.5", "--out", TinyRun.NewDir("probe"), o == "--epochs" ? "--batch-size" : "--epochs", "0");
            bool parsesAFraction = !r.Err.Contains("Cannot parse", StringComparison.Ordinal) && !r.Err.Contains("not recognized", StringComparison.Ordinal)
                && !r.Err.Contains("Required argument", StringComparison.Ordinal) && !r.Err.Contains("Unrecognized", StringComparison.Ordinal);
            bool isPath = o is "--data" or "--eval-data" or "--label-subset" or "--out" or "--name" or "--resume" or "--init-from" or "--config" or "--device" or "--help" or "-h" or "-?" or "--version";
            if (parsesAFraction && !isPath) Assert.Contains(o, FloatingOptions);
        }
        Assert.Contains("--brightness", offered);
    }

    [Theory]
    [InlineData("--shapes-count", "20000000")]
    [InlineData("--batch-size", "2000000")]
    [InlineData("--head-out", "100000000")]
    [InlineData("--head-hidden", "100000000")]
    [InlineData("--knn-k", "2000000000")]
    [InlineData("--linear-batch-size", "2000000000")]
    [InlineData("--epochs", "99999999999")]
    public void SizesThatWouldOverflowWhatTheyAllocateAreRefused(string option, string value)
    {
        string outDir = TinyRun.NewDir("overflow");
        Hostile.AssertOneLine(Cli.Run("pretrain", option, value, "--out", outDir), (int)ExitCode.BadOption, option);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void ImageArraysAndViewBatchesMustFitOneBuffer()
    {
        Hostile.AssertOneLine(Cli.Run("pretrain", "--image-size", "512", "--shapes-count", "3000"), (int)ExitCode.BadOption, "--shapes-count", "at most 2730");
        var e = Assert.Throws<UserError>(() => new RunConfig { BatchSize = RunConfig.MaxBatchSize }.RequireBatchFits(512, 512));
        Assert.Contains("--batch-size", e.Message);
        new RunConfig { BatchSize = 512 }.RequireBatchFits(96, 96);
    }

    [Theory]
    [InlineData("--out", "")]
    [InlineData("--out", "   ")]
    [InlineData("--name", "")]
    [InlineData("--name", "..")]
    [InlineData("--name", "a/b")]
    [InlineData("--resume", "")]
    [InlineData("--data", "")]
    public void EmptyOrEscapingPathsAreRefusedByName(string option, string value)
    {
        Hostile.AssertOneLine(Cli.Run("pretrain", option, value, "--epochs", "1"), (int)ExitCode.BadOption, option);
    }

    [Fact]
    public void NameCannotEscapeRuns()
    {
        string escape = $"../../simclr-escape-{Guid.NewGuid():N}";
        Hostile.AssertOneLine(Cli.Run("pretrain", "--name", escape, "--epochs", "1"), (int)ExitCode.BadOption, "--name", "runs/");
        Assert.False(Directory.Exists(Path.GetFullPath(Path.Combine("runs", escape))));
    }

    [Theory]
    [InlineData("--arch", "resnet99", "resnet18")]
    [InlineData("--dataset", "imagenet", "cifar10")]
    [InlineData("--progress", "loud", "quiet")]
    [InlineData("--eval", "half", "none")]
    [InlineData("--lr-scaling", "cubic", "sqrt")]
    [InlineData("--augment", "strong", "paper")]
    [InlineData("--stem", "tiny", "imagenet")]
    [InlineData("--device", "tpu", "cuda:N")]
    public void ChoiceErrorsNameTheOptionAndListTheChoices(string option, string value, string aChoice)
    {
        Hostile.AssertOneLine(Cli.Run("pretrain", option, value), (int)ExitCode.BadOption, option, value, aChoice);
    }

    [Fact]
    public void ResumeIntoAnotherRunIsRefusedAndIntoANewFolderContinuesInACopy()
    {
        using var tmp = new TempDir();
        string a = epochOne.CopyTo(tmp.File("a")), b = tmp.File("b"), c = tmp.File("c");
        Assert.Equal(0, Cli.Run(TinyRun.Args(b, 1)).Code);
        var beforeA = Fixtures.Snapshot(a);
        var beforeB = Fixtures.Snapshot(b);

        var refused = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(a, 6), "--out", b, "--progress", "quiet");
        Hostile.AssertOneLine(refused, (int)ExitCode.BadOption, "--out", b, "another run");
        var fresh = Cli.Run(TinyRun.Args(b, 1));
        Hostile.AssertOneLine(fresh, (int)ExitCode.BadOption, b, "another run", "--resume");

        var copy = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(a, 6), "--out", c, "--progress", "quiet");
        Assert.True(copy.Code == 0, copy.Err);
        Assert.Contains($"continuing into a copy in {c}", copy.Out);
        Assert.Contains(a, copy.Out);
        Assert.Equal(12, TinyRun.StepLosses(c).Count);
        Assert.Equal(TinyRun.StepLosses(a), TinyRun.StepLosses(c).Take(6));
        Assert.True(File.Exists(TinyRun.Checkpoint(c, 12)));
        Fixtures.AssertUnchanged(beforeA, a);
        Fixtures.AssertUnchanged(beforeB, b);

        // A checkpoint outside any run folder has no folder to continue in: --out is required.
        string loose = tmp.File("loose.safetensors");
        File.Copy(TinyRun.Checkpoint(a, 6), loose);
        Hostile.AssertOneLine(Cli.Run("pretrain", "--resume", loose, "--progress", "quiet"), (int)ExitCode.BadOption, "--resume", loose, "--out");
    }
}
