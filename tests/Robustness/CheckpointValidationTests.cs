// Checkpoints validated as a whole wherever they are read: header values of the wrong JSON type are the
// reader's own error, non-finite weights, BN statistics or momentum are refused naming the tensor (linear-eval
// used to report 100 % on NaN weights), and metadata must agree with the stored config and with the data
// (position, seed, partial sums). Each refusal leaves the run folder as it was. The tests edit copies of one
// shared epoch-1 run (EpochOneRun) rather than pretraining it again each.
using System.Globalization;
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;

namespace SimClr.Tests.Robustness;

public class CheckpointValidationTests(EpochOneRun epochOne)
{
    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[null,8]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e30]}}", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "dimension")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", "too large")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536,65536,65536,65536],\"data_offsets\":[0,8]}}", "too large")]
    [InlineData("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", "dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":{\"0\":2},\"data_offsets\":[0,8]}}", "shape")]
    [InlineData("{\"__metadata__\":[\"x\"]}", "__metadata__")]
    public void HeaderValuesOfTheWrongTypeAreTheReadersOwnError(string header, string named)
    {
        var e = Assert.Throws<UserError>(() => SafeTensorsFile.Parse("odd.safetensors", SafeTensorsTests.Raw(header, 8)));
        Assert.Contains("odd.safetensors", e.Message);
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void AHeaderWithStringOffsetsIsOneLineThroughTheCli()
    {
        using var tmp = new SimClr.Tests.Data.TempDir();
        string path = tmp.File("strings.safetensors");
        File.WriteAllBytes(path, SafeTensorsTests.Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", 8));
        Hostile.AssertOneLine(Cli.Run("knn", "--checkpoint", path), (int)ExitCode.BadInput, path, "data_offsets");
    }

    public static TheoryData<string, float> NonFinite => new()
    {
        { "conv1.weight", float.NaN },
        { "layer1.0.bn1.running_mean", float.PositiveInfinity },
        { "layer2.0.bn2.running_var", float.NegativeInfinity },
        { "head.0.weight", float.NaN },
        { "head.1.running_var", float.NaN },
        { "momentum.layer3.1.conv2.weight", float.NaN },
    };

    [Theory]
    [MemberData(nameof(NonFinite))]
    public void NonFiniteWeightsStatisticsOrMomentumAreRefusedNamingTheTensor(string tensor, float value)
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("nonfinite"));
        try
        {
            var file = SafeTensorsFile.Load(TinyRun.Checkpoint(dir, 6));
            Assert.True(file.Tensors.ContainsKey(tensor), $"the model has no tensor {tensor}: {string.Join(", ", file.Tensors.Keys.Where(k => k.StartsWith("head", StringComparison.Ordinal)))}");
            string bad = Fixtures.Rewrite(TinyRun.Checkpoint(dir, 6), Path.Combine(dir, "bad.safetensors"),
                floats: (name, v) => { if (name == tensor) v[v.Length / 2] = value; return v; });
            var before = Fixtures.Snapshot(dir);
            var shared = Fixtures.Snapshot(epochOne.Dir);
            string[] eval = ["--checkpoint", bad, "--shapes-count", "96"];
            foreach (var args in new[] { ["linear-eval", .. eval], ["knn", .. eval], new[] { "pretrain", "--resume", bad, "--out", Path.Combine(dir, "next"), "--progress", "quiet" } })
                Hostile.AssertOneLine(Cli.Run(args), (int)ExitCode.BadInput, bad, $"'{tensor}'", value.ToString(CultureInfo.InvariantCulture));
            Fixtures.AssertUnchanged(before, dir);
            Fixtures.AssertUnchanged(shared, epochOne.Dir);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NegativeVariancesAndCountersAreRefused()
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("negative"));
        try
        {
            string bad = Fixtures.Rewrite(TinyRun.Checkpoint(dir, 6), Path.Combine(dir, "bad.safetensors"),
                floats: (name, v) => { if (name == "bn1.running_var") v[0] = -1; return v; });
            Hostile.AssertOneLine(Cli.Run("knn", "--checkpoint", bad, "--shapes-count", "96"), (int)ExitCode.BadInput, "'bn1.running_var'", "variance");
        }
        finally { Directory.Delete(dir, true); }
    }

    public static TheoryData<string, string, string> ImpossibleMetadata => new()
    {
        // 96 images in batches of 16 make 6 steps per epoch: the checkpoint after epoch 1 is at step 6.
        { "step", "7", "does not fit" },
        { "epoch_step", "6", "does not fit" },
        { "epoch", "3", "impossible" },
        { "epoch_loss_count", "1", "impossible" },
        { "epoch_loss_sum", "NaN", "impossible" },
        { "seed", "6", "seed" },
        { "format_version", "9", "version" },
    };

    [Theory]
    [MemberData(nameof(ImpossibleMetadata))]
    public void ImpossibleMetadataIsRefusedOnResume(string key, string value, string named)
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("meta"));
        try
        {
            string bad = Fixtures.Rewrite(TinyRun.Checkpoint(dir, 6), Path.Combine(dir, "bad.safetensors"), metadata: (k, v) => k == key ? value : v);
            var before = Fixtures.Snapshot(dir);
            var shared = Fixtures.Snapshot(epochOne.Dir);
            Hostile.AssertOneLine(Cli.Run("pretrain", "--resume", bad, "--out", Path.Combine(dir, "next"), "--progress", "quiet"), (int)ExitCode.BadInput, bad, named);
            Fixtures.AssertUnchanged(before, dir);
            Fixtures.AssertUnchanged(shared, epochOne.Dir);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void APositionThatDoesNotFitTheDataIsRefused()
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("position"));
        try
        {
            // The same checkpoint resumed on a third of the data: 2 steps per epoch, so step 6 cannot end epoch 1.
            string moved = Fixtures.Rewrite(TinyRun.Checkpoint(dir, 6), Path.Combine(dir, "fewer.safetensors"),
                metadata: (k, v) => k == "config" ? v.Replace("\"shapes_count\": 96", "\"shapes_count\": 32") : v);
            var r = Cli.Run("pretrain", "--resume", moved, "--out", Path.Combine(dir, "next"), "--progress", "quiet");
            Hostile.AssertOneLine(r, (int)ExitCode.BadInput, moved, "2 steps per epoch");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AStoredConfigThatIsNotResolvedOrNotAConfigIsRefused()
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("config"));
        try
        {
            string ck = TinyRun.Checkpoint(dir, 6);
            foreach (var (edit, named) in new (Func<string, string>, string)[]
            {
                (v => v.Replace("\"stem\": \"cifar\"", "\"stem\": \"auto\""), "never resolved"),
                (v => v.Replace("\"augment_overrides\": {", "\"augment_overrides\": null, \"x\": {"), "augment"),
                (v => System.Text.RegularExpressions.Regex.Replace(v, "\"device\": \"[^\"]*\"", "\"device\": null"), "--device"),
                (v => v.Replace("\"width\": 0.125", "\"width\": \"wide\""), "not a valid config"),
                (v => v.Replace("\"epochs\": 2", "\"epochs\": 99999999999"), "not a valid config"),
            })
            {
                string bad = Fixtures.Rewrite(ck, Path.Combine(dir, "bad.safetensors"), metadata: (k, v) => k == "config" ? edit(v) : v);
                Assert.NotEqual(SafeTensorsFile.Load(ck).Metadata["config"], SafeTensorsFile.Load(bad).Metadata["config"]);
                Hostile.AssertOneLine(Cli.Run("knn", "--checkpoint", bad, "--shapes-count", "96"), (int)ExitCode.BadInput, bad, named);
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
