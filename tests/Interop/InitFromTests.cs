// --init-from: what a torchvision state_dict may and may not differ in (fc ignored, a missing head kept at
// its init, a head loaded when present, anything else one line naming the tensor), the arch/width/stem read
// off the shapes, and the CLI's refusals. ReadmeRecipeTests loads a file written by torchvision itself.
using SimClr.Kernels.Cpu;
using SimClr.Layers;
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Interop;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Interop;

public class InitFromTests
{
    private static RunConfig Config(Architecture arch, double width, StemChoice stem) => new RunConfig { Arch = arch, Width = width, Stem = stem }.Resolve(16);

    /// <summary>A torchvision-style file from a model of <paramref name="config"/> initialized with <paramref name="seed"/>:
    /// every encoder tensor, fc.weight/fc.bias, and the head when asked; <paramref name="edit"/> may change it.</summary>
    private static string WriteStateDict(string path, RunConfig config, ulong seed, bool head, Action<SafeTensorsWriter, string, float[], int[]>? edit = null)
    {
        using var backend = new CpuBackend<float>();
        using var model = ModelState.Build(backend, config with { Seed = seed }, 16, 16, 2);
        var w = new SafeTensorsWriter();
        foreach (var e in model.Parameters.Entries)
        {
            if (!head && e.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal)) continue;
            if (e.Kind == StoreTensorKind.Counter) { w.Add<long>(e.Name, [7], []); continue; }
            var values = model.Parameters.GetHost(e.Name);
            if (edit is null) w.Add<float>(e.Name, values, e.Shape.ToArray());
            else edit(w, e.Name, values, e.Shape.ToArray());
        }
        w.Add<float>("fc.weight", new float[1000 * model.FeatureDim], [1000, model.FeatureDim]);
        w.Add<float>("fc.bias", new float[1000], [1000]);
        w.WriteAtomic(path);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EncoderLoadsExactlyFcIsIgnoredAndTheHeadLoadsOnlyWhenPresent(bool withHead)
    {
        using var dir = new Data.TempDir();
        var config = Config(Architecture.ResNet18, 0.25, StemChoice.ImageNet);
        var file = SafeTensorsFile.Load(WriteStateDict(dir.File("tv.safetensors"), config, seed: 99, head: withHead));
        using var backend = new CpuBackend<float>();
        using var model = ModelState.Build(backend, config, 16, 16, 2);
        var store = model.Parameters;
        var initialHead = store.GetHost("head.0.weight");
        var report = TorchvisionWeights.Load(file, store, "test model");
        Assert.True(report.FcIgnored);
        Assert.Equal(withHead, report.HeadLoaded);
        foreach (var e in store.Entries)
        {
            bool isHead = e.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal);
            if (isHead && !withHead) continue;
            if (e.Kind == StoreTensorKind.Counter) Assert.Equal(7, store.GetCounter(e.Name));
            else Assert.Equal(file.Read<float>(e.Name), store.GetHost(e.Name));
        }
        if (!withHead) Assert.Equal(initialHead, store.GetHost("head.0.weight"));
        else Assert.NotEqual(initialHead, store.GetHost("head.0.weight"));
        Assert.Equal(store.Entries.Count(e => withHead || !e.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal)), report.Loaded);
    }

    public static TheoryData<string, string, string> Mismatches => new()
    {
        { "reshape", "layer2.0.downsample.0.weight", "has shape" },
        { "dtype", "layer1.1.bn2.weight", "has dtype" },
        { "drop", "layer4.1.conv2.weight", "is missing" },
        { "extra", "layer5.0.conv1.weight", "is not part of this model" },
        { "drop", "head.3.bias", "is missing" },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void AnyOtherDifferenceIsOneLineNamingTheTensor(string kind, string tensor, string says)
    {
        using var dir = new Data.TempDir();
        var config = Config(Architecture.ResNet18, 0.125, StemChoice.Cifar);
        string path = WriteStateDict(dir.File("tv.safetensors"), config, seed: 5, head: tensor.StartsWith("head."), (w, name, values, shape) =>
        {
            if (name != tensor) w.Add<float>(name, values, shape);
            else if (kind == "reshape") w.Add<float>(name, values, [values.Length]);
            else if (kind == "dtype") w.Add<double>(name, [.. values.Select(v => (double)v)], shape);
            else if (kind != "drop") w.Add<float>(name, values, shape);
            if (kind == "extra" && name == "conv1.weight") w.Add<float>(tensor, values, shape);
        });
        var r = Cli.Run("linear-eval", "--init-from", path, "--image-size", "16", "--shapes-count", "40", "--linear-epochs", "1", "--device", "cpu");
        Assert.Equal((int)ExitCode.BadInput, r.Code);
        Assert.Single(r.Err.TrimEnd().Split('\n'));
        Assert.Contains(path, r.Err);
        Assert.Contains($"'{tensor}'", r.Err);
        Assert.Contains(says, r.Err);
    }

    [Theory]
    [InlineData(Architecture.ResNet18, 0.125, StemChoice.Cifar)]
    [InlineData(Architecture.ResNet34, 0.25, StemChoice.ImageNet)]
    [InlineData(Architecture.ResNet50, 0.125, StemChoice.Cifar)]
    public void ArchWidthAndStemAreReadOffTheShapes(Architecture arch, double width, StemChoice stem)
    {
        using var dir = new Data.TempDir();
        var file = SafeTensorsFile.Load(WriteStateDict(dir.File("tv.safetensors"), Config(arch, width, stem), seed: 1, head: false));
        Assert.Equal((arch, width, stem), TorchvisionWeights.Infer(file));
    }

    [Fact]
    public void AFileThatIsNoResNetSaysWhatItExpected()
    {
        using var dir = new Data.TempDir();
        var w = new SafeTensorsWriter();
        w.Add<float>("conv1.weight", new float[64 * 3 * 5 * 5], [64, 3, 5, 5]);
        w.WriteAtomic(dir.File("odd.safetensors"));
        var r = Cli.Run("linear-eval", "--init-from", dir.File("odd.safetensors"));
        Assert.Equal((int)ExitCode.BadInput, r.Code);
        Assert.Contains("'conv1.weight' has shape [64, 3, 5, 5]", r.Err);
        Assert.Single(r.Err.TrimEnd().Split('\n'));
    }

    /// <summary>A checkpoint's stored config keeps the --init-from it started from; resuming it is not "--init-from
    /// beside --resume" (a check of the stored value once refused every such resume).</summary>
    [Fact]
    public void ARunStartedFromInitFromResumes()
    {
        using var dir = new Data.TempDir();
        string path = WriteStateDict(dir.File("tv.safetensors"), Config(Architecture.ResNet18, 0.125, StemChoice.ImageNet), seed: 2, head: false);
        string run = dir.File("run");
        var first = Cli.Run("pretrain", "--init-from", path, "--shapes-count", "40", "--image-size", "16", "--batch-size", "8",
            "--epochs", "2", "--stop-after", "1", "--eval", "none", "--progress", "quiet", "--device", "cpu", "--out", run);
        Assert.True(first.Code == 0, first.Err);
        string epochOne = TinyRun.Checkpoint(run, 5);
        Assert.True(File.Exists(epochOne), $"no {epochOne}");
        var resumed = Cli.Run("pretrain", "--resume", epochOne, "--progress", "quiet");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.True(File.Exists(TinyRun.Checkpoint(run, 10)));
    }

    [Fact]
    public void PretrainRefusesInitFromWithResumeAndAMismatchLeavesNoRunDirectory()
    {
        using var dir = new Data.TempDir();
        string path = WriteStateDict(dir.File("tv.safetensors"), Config(Architecture.ResNet18, 0.125, StemChoice.ImageNet), seed: 2, head: false);
        var both = Cli.Run("pretrain", "--init-from", path, "--resume", dir.File("whatever.safetensors"), "--out", dir.File("run1"));
        Assert.Equal((int)ExitCode.BadOption, both.Code);
        Assert.Contains("--init-from", both.Err);

        // An explicit --stem still wins over the file's, and the file then does not fit: conv1 is named.
        var stem = Cli.Run("pretrain", "--init-from", path, "--stem", "cifar", "--shapes-count", "40", "--image-size", "16", "--batch-size", "8",
            "--epochs", "1", "--eval", "none", "--progress", "quiet", "--device", "cpu", "--out", dir.File("run2"));
        Assert.Equal((int)ExitCode.BadInput, stem.Code);
        Assert.Contains("'conv1.weight'", stem.Err);
        Assert.False(Directory.Exists(dir.File("run2")));

        var neither = Cli.Run("linear-eval", "--shapes-count", "40");
        Assert.Equal((int)ExitCode.BadOption, neither.Code);
        Assert.Contains("--init-from", neither.Err);
    }
}
