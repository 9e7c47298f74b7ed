// config.json as an interface: every value is spelt as the CLI spells it (and old kebab-case files still load),
// --config reproduces a run exactly and lets flags override it, --resume keeps the run's own session settings,
// and every "(default …)" the help states is the value actually used.
using System.CommandLine;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SimClr.Training.Cli;
using SimClr.Training.Cli.Commands;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Tests.Training;

public class ReproducibleConfigTests
{
    private static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    [Fact]
    public void ChoicesAreWrittenAsTheCliSpellsThemAndOldKebabCaseStillReads()
    {
        var c = new RunConfig { Arch = Architecture.ResNet50, Stem = StemChoice.ImageNet, Dataset = DatasetKind.FashionMnist, LrScaling = LrScaling.Sqrt, Progress = ProgressMode.Quiet };
        var json = JsonNode.Parse(c.ToJson())!.AsObject();
        Assert.Equal("resnet50", (string)json["arch"]!);
        Assert.Equal("imagenet", (string)json["stem"]!);
        Assert.Equal("fashion-mnist", (string)json["dataset"]!);
        Assert.Equal("sqrt", (string)json["lr_scaling"]!);
        Assert.Equal("quiet", (string)json["progress"]!);
        Assert.Equal(c, RunConfig.FromJson(c.ToJson(), "test") with { AugmentOverrides = c.AugmentOverrides });

        // What format-version-1 builds wrote before the CLI spelling: kebab case.
        json["arch"] = "res-net18";
        json["stem"] = "image-net";
        var old = RunConfig.FromJson(json.ToJsonString(), "old.safetensors");
        Assert.Equal(Architecture.ResNet18, old.Arch);
        Assert.Equal(StemChoice.ImageNet, old.Stem);
        json["arch"] = "resnet99";
        var e = Assert.Throws<UserError>(() => RunConfig.FromJson(json.ToJsonString(), "bad.json"));
        Assert.Contains("resnet99", e.Message);
    }

    /// <summary>Parses <paramref name="args"/> with pretrain's options, without running anything.</summary>
    private static (ParseResult Result, RunConfig Config) ParsePretrain(params string[] args)
    {
        var data = new DataOptions();
        var (options, _, config, _, _) = PretrainCommand.Options(data);
        var root = new RootCommand();
        options.AddTo(root);
        config.AddTo(root);
        var r = root.Parse(args);
        Assert.True(r.Errors.Count == 0, string.Join("; ", r.Errors.Select(x => x.Message)) + " for " + string.Join(' ', args));
        return (r, options.Apply(r, data.Defaults(r)));
    }

    [Fact]
    public void EveryValueInConfigJsonIsOneItsFlagAccepts()
    {
        var config = ParsePretrain("--dataset", "stl10", "--data", "/x", "--arch", "resnet34", "--stem", "imagenet", "--lr-scaling", "sqrt", "--augment", "paper",
            "--eval", "none", "--progress", "plain", "--folder-labels", "subfolders", "--eval-dataset", "fashion-mnist", "--crop-min", "0.3").Config.Resolve(96);
        var json = JsonNode.Parse(config.ToJson())!.AsObject();
        var flags = new Dictionary<string, string> { ["data_path"] = "--data", ["eval_data_path"] = "--eval-data", ["augment_overrides.crop_area_min"] = "--crop-min" };
        int checkedValues = 0;
        foreach (var (key, node) in json.SelectMany(p => p.Value is JsonObject o ? o.Select(q => ($"{p.Key}.{q.Key}", q.Value)) : [(p.Key, p.Value)]))
        {
            // out/name/resume say where a run writes, not what it computes; ranks is the world size mpirun/srun gave
            // the run (kept so a resume can say what a different one changes), which the launcher sets again.
            if (node is null || key is "out" or "name" or "resume" or "ranks") continue;
            string flag = flags.TryGetValue(key, out var f) ? f : "--" + key.Replace('_', '-');
            if (key.StartsWith("augment_overrides.", StringComparison.Ordinal) && !flags.ContainsKey(key)) flag = "--" + key["augment_overrides.".Length..].Replace('_', '-');
            string value = node.GetValueKind() == System.Text.Json.JsonValueKind.String ? node.GetValue<string>() : node.ToJsonString();
            var (_, again) = ParsePretrain(flag, value);
            checkedValues++;
            Assert.Contains(value, again.ToJson());
        }
        Assert.True(checkedValues > 30, $"only {checkedValues} values checked");
    }

    [Fact]
    public void ARunsConfigJsonPassedToConfigReproducesItExactly()
    {
        string first = TinyRun.NewDir("cfg-a"), second = TinyRun.NewDir("cfg-b");
        try
        {
            var a = Cli.Run(TinyRun.Args(first, 1, "--temperature", "0.3", "--crop-min", "0.4", "--stem", "cifar", "--keep-last", "1"));
            Assert.True(a.Code == 0, a.Err);
            var b = Cli.Run("pretrain", "--config", Path.Combine(first, "config.json"), "--out", second);
            Assert.True(b.Code == 0, b.Err);
            var ja = Json(Path.Combine(first, "config.json"));
            var jb = Json(Path.Combine(second, "config.json"));
            ja.Remove("out");
            jb.Remove("out");
            Assert.Equal(ja.ToJsonString(), jb.ToJsonString());
            Assert.Equal(TinyRun.StepLosses(first), TinyRun.StepLosses(second));

            // A flag beside --config wins over the file.
            string third = TinyRun.NewDir("cfg-c");
            try
            {
                var c = Cli.Run("pretrain", "--config", Path.Combine(first, "config.json"), "--out", third, "--seed", "9");
                Assert.True(c.Code == 0, c.Err);
                Assert.Equal(9, (int)Json(Path.Combine(third, "config.json"))["seed"]!);
                Assert.NotEqual(TinyRun.StepLosses(first), TinyRun.StepLosses(third));
            }
            finally { Directory.Delete(third, true); }
        }
        finally
        {
            Directory.Delete(first, true);
            if (Directory.Exists(second)) Directory.Delete(second, true);
        }
    }

    [Fact]
    public void ABadConfigFileIsOneLineNamingIt()
    {
        using var tmp = new Data.TempDir();
        string typo = tmp.File("typo.json");
        File.WriteAllText(typo, "{ \"epochz\": 3 }");
        var (code, _, err) = Cli.Run("pretrain", "--config", typo, "--out", tmp.File("never"));
        Assert.Equal((int)ExitCode.BadInput, code);
        Assert.Contains(typo, err);
        Assert.Contains("epochz", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(tmp.File("never")));

        (code, _, err) = Cli.Run("pretrain", "--config", tmp.Path);
        Assert.Equal((int)ExitCode.BadInput, code);
        Assert.Contains("is a folder", err);
        (code, _, err) = Cli.Run("pretrain", "--config", tmp.File("missing.json"));
        Assert.Equal((int)ExitCode.BadInput, code);
        Assert.Contains("not found", err);
    }

    [Fact]
    public void ResumeKeepsTheRunsOwnSessionSettingsUnlessGiven()
    {
        string dir = TinyRun.NewDir("resume-settings");
        try
        {
            var first = Cli.Run(TinyRun.Args(dir, 2, "--stop-after", "1", "--keep-last", "1", "--loss-every", "3"));
            Assert.True(first.Code == 0, first.Err);
            Assert.Equal("none", (string)Json(Path.Combine(dir, "config.json"))["eval"]!);
            var second = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(dir, 6), "--epochs", "7");
            Assert.True(second.Code == 0, second.Err);
            Assert.Contains("--epochs ignored with --resume", second.Out);
            var config = Json(Path.Combine(dir, "config.json"));
            Assert.Equal("none", (string)config["eval"]!);
            Assert.Equal(1, (int)config["keep_last"]!);
            Assert.Equal(3, (int)config["loss_every"]!);
            Assert.Equal(2, (int)config["epochs"]!);
            Assert.Equal("quiet", (string)config["progress"]!);
            Assert.False(Json(Path.Combine(dir, "summary.json")).ContainsKey("linear_top1"));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>"(default X)" or "(default X; Y with the shapes preset)" in an option's description.</summary>
    private static readonly Regex Stated = new(@"\(default (?<paper>[^;()\s]+)[^;()]*(; (?<shapes>[^\s()]+) with the shapes preset)?\)");

    [Fact]
    public void EveryDefaultPretrainsHelpStatesIsTheValueUsed()
    {
        var (options, _, _, _, _) = PretrainCommand.Options(new DataOptions());
        var root = new RootCommand();
        options.AddTo(root);
        int checkedDefaults = 0;
        foreach (var option in root.Options.Where(o => o.Description is not null))
        {
            var m = Stated.Match(option.Description!);
            // A default that is a description rather than a value (--out's ./runs/<name or timestamp>) is not checkable.
            if (!m.Success || m.Groups["paper"].Value.IndexOfAny(['/', '<']) >= 0) continue;
            // The paper defaults apply to any dataset but shapes; cifar10 is 32 px, so "auto" choices resolve as for CIFAR.
            foreach (var (value, dataset) in new[] { (m.Groups["paper"].Value, "cifar10"), (m.Groups["shapes"].Success ? m.Groups["shapes"].Value : m.Groups["paper"].Value, "shapes") })
            {
                if (option.Name == "--dataset") { Assert.Equal("shapes", value); continue; }
                var (_, without) = ParsePretrain("--dataset", dataset);
                var (_, with) = ParsePretrain("--dataset", dataset, option.Name, value.TrimEnd('.', ','));
                var a = without.Resolve(32);
                var b = with.Resolve(32);
                Assert.True(a.AugmentSpec() == b.AugmentSpec() && (a with { AugmentOverrides = new() }) == (b with { AugmentOverrides = new() }),
                    $"{option.Name}: the help says the default is {value} for {dataset}, but passing it changes the config");
                checkedDefaults++;
            }
        }
        Assert.True(checkedDefaults >= 50, $"only {checkedDefaults} stated defaults found");
    }

    [Theory]
    [InlineData("linear-eval", "--linear-epochs")]
    [InlineData("linear-eval", "--seed")]
    [InlineData("knn", "--knn-k")]
    [InlineData("finetune", "--seed")]
    public void EvaluationCommandsSayTheirDefaultsAreTheCheckpoints(string command, string option)
    {
        var (code, output, _) = Cli.Run(command, "--help");
        Assert.Equal(0, code);
        var line = output.Split('\n').First(l => l.TrimStart().StartsWith(option + " ", StringComparison.Ordinal));
        Assert.Contains("the checkpoint's", line);
    }
}
