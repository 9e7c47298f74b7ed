// export at every width and stem: the file holds exactly the encoder (and with --with-head the head) of the
// checkpoint, value for value, with the metadata a loader needs; a checkpoint that does not match its own
// config is refused naming the tensor, with nothing written; the output can never be the input.
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;

namespace SimClr.Tests.Interop;

public class ExportTests
{
    public static TheoryData<Architecture, double, StemChoice> Models => new()
    {
        { Architecture.ResNet18, 0.25, StemChoice.ImageNet },
        { Architecture.ResNet18, 0.5, StemChoice.Cifar },
        { Architecture.ResNet34, 0.125, StemChoice.Cifar },
        { Architecture.ResNet50, 0.125, StemChoice.ImageNet },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void ExportHoldsTheCheckpointsEncoderExactlyAtEveryWidthAndStem(Architecture arch, double width, StemChoice stem)
    {
        using var dir = new Data.TempDir();
        string ckpt = dir.File("ckpt.safetensors"), plain = dir.File("encoder.safetensors"), withHead = dir.File("encoder-head.safetensors");
        InteropHarness.WriteCheckpoint(ckpt, InteropHarness.Config(dir.Path, 16, arch, width, stem), forwards: 1);
        Assert.Equal(0, Cli.Run("export", "--checkpoint", ckpt, "--output", plain).Code);
        var r = Cli.Run("export", "--checkpoint", ckpt, "--output", withHead, "--with-head");
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("projection head included", r.Out);

        var source = SafeTensorsFile.Load(ckpt);
        var encoder = source.Tensors.Keys.Where(k => !k.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal) && !k.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal)).ToList();
        var head = source.Tensors.Keys.Where(k => k.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(head);
        foreach (var (path, names) in new[] { (plain, encoder), (withHead, encoder.Concat(head).ToList()) })
        {
            var f = SafeTensorsFile.Load(path);
            Assert.Equal(names.Order(), f.Tensors.Keys.Order());
            foreach (var name in names)
            {
                Assert.Equal(source.Tensors[name].Shape, f.Tensors[name].Shape);
                if (source.Tensors[name].DType == SafeDType.I64) Assert.Equal(source.Read<long>(name), f.Read<long>(name));
                else Assert.Equal(source.Read<float>(name), f.Read<float>(name));
            }
            Assert.Equal(Checkpoint.EncoderFormat, f.Metadata["format"]);
            Assert.Equal(arch.ToString().ToLowerInvariant(), f.Metadata["arch"]);
            Assert.Equal(width, double.Parse(f.Metadata["width"], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(stem == StemChoice.Cifar ? "cifar" : "imagenet", f.Metadata["stem"]);
            Assert.Equal("16", f.Metadata["image_size"]);
            Assert.Equal(f.Read<float>("layer4.1.bn2.weight").Length * (arch == Architecture.ResNet50 ? 4 : 1), int.Parse(f.Metadata["feature_dim"]));
        }
        Assert.Equal("none", SafeTensorsFile.Load(plain).Metadata["head"]);
        Assert.Equal("included", SafeTensorsFile.Load(withHead).Metadata["head"]);
    }

    public static TheoryData<string, string> Corruptions => new()
    {
        { "reshape", "layer1.0.conv1.weight" },
        { "dtype", "bn1.running_var" },
        { "drop", "layer3.1.bn2.bias" },
        { "extra", "fc.weight" },
        { "drop", "momentum.conv1.weight" },
    };

    /// <summary>Each corruption once: a tensor whose shape, dtype or presence no longer matches the config, or a
    /// tensor the model does not have. Before this check export wrote such files with exit 0.</summary>
    [Theory]
    [MemberData(nameof(Corruptions))]
    public void ACheckpointThatDoesNotMatchItsConfigIsRefusedNamingTheTensor(string corruption, string tensor)
    {
        using var dir = new Data.TempDir();
        string good = dir.File("good.safetensors"), bad = dir.File("bad.safetensors"), output = dir.File("encoder.safetensors");
        InteropHarness.WriteCheckpoint(good, InteropHarness.Config(dir.Path, 16, Architecture.ResNet18, 0.125, StemChoice.Cifar), forwards: 1);
        var src = SafeTensorsFile.Load(good);
        var w = new SafeTensorsWriter();
        foreach (var (k, v) in src.Metadata) w.AddMetadata(k, v);
        foreach (var t in src.Tensors.Values.OrderBy(t => t.Begin))
        {
            if (t.Name == tensor && corruption == "drop") continue;
            if (t.DType == SafeDType.I64) { w.Add<long>(t.Name, src.Read<long>(t.Name), t.Shape); continue; }
            var values = src.Read<float>(t.Name);
            if (t.Name == tensor && corruption == "reshape") w.Add<float>(t.Name, values, [values.Length]);
            else if (t.Name == tensor && corruption == "dtype") w.Add<double>(t.Name, [.. values.Select(v => (double)v)], t.Shape);
            else w.Add<float>(t.Name, values, t.Shape);
        }
        if (corruption == "extra") w.Add<float>(tensor, new float[10 * 64], [10, 64]);
        w.WriteAtomic(bad);

        var r = Cli.Run("export", "--checkpoint", bad, "--output", output);
        Assert.Equal((int)ExitCode.BadInput, r.Code);
        Assert.Single(r.Err.TrimEnd().Split('\n'));
        Assert.Contains(bad, r.Err);
        Assert.Contains($"'{tensor}'", r.Err);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void TheOutputIsNeverTheCheckpointHoweverThePathIsSpelled()
    {
        using var dir = new Data.TempDir();
        string runDir = dir.Sub("run"), ckpt = Path.Combine(runDir, "ckpt.safetensors");
        InteropHarness.WriteCheckpoint(ckpt, InteropHarness.Config(dir.Path, 16, Architecture.ResNet18, 0.125, StemChoice.Cifar), forwards: 1);
        var bytes = File.ReadAllBytes(ckpt);
        Directory.CreateSymbolicLink(dir.File("latest"), runDir);
        File.CreateSymbolicLink(dir.File("ckpt-link.safetensors"), ckpt);
        string[] spellings =
        [
            ckpt,
            Path.Combine(runDir, ".", "ckpt.safetensors"),
            Path.Combine(dir.Path, "latest", "ckpt.safetensors"),
            dir.File("ckpt-link.safetensors"),
        ];
        foreach (var output in spellings)
            foreach (var command in new[] { "export", "embed" })
            {
                var r = Cli.Run(command, "--checkpoint", ckpt, "--output", output);
                Assert.Equal((int)ExitCode.BadOption, r.Code);
                Assert.Contains("--output", r.Err);
                Assert.Contains("would be overwritten", r.Err);
                Assert.Equal(bytes, File.ReadAllBytes(ckpt));
            }
    }
}
