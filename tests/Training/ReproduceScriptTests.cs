using System.Diagnostics;
using System.Security.Cryptography;
using SimClr.Training.Cli;

namespace SimClr.Tests.Training;

/// <summary>Runs scripts/reproduce-cifar10.sh against a generated archive in the exact CIFAR-10 binary format
/// (6 files of 10000 records of 1 label byte + 3072 pixels), since the real one cannot be downloaded here.
/// The script comes from the source tree or the GPU bundle (which ships it), the trainer runs on the same
/// .NET host as the tests (the bundle has no `dotnet` on PATH); without either the test skips with the reason.</summary>
public class ReproduceScriptTests
{
    private const string Script = "scripts/reproduce-cifar10.sh";

    private static string RepoRoot() => TestHost.FolderHolding(Script) ?? "";

    /// <summary>Why the test cannot run here, or null.</summary>
    internal static string? MissingPrerequisite(string? root, string? dotnet) =>
        root is null ? $"{Script} is not above {AppContext.BaseDirectory} (neither a source tree nor a GPU bundle)"
        : dotnet is null ? "no .NET host to start the trainer with (not run by `dotnet`, no $DOTNET_ROOT/dotnet, no dotnet on PATH)"
        : null;

    [Fact]
    public void OutsideTheSourceTreeOrWithoutAHostTheTestSaysWhy()
    {
        using var outside = new SimClr.Tests.Data.TempDir();
        Assert.Null(TestHost.FolderHolding(Script, outside.Path));
        Assert.Contains("is not above", MissingPrerequisite(TestHost.FolderHolding(Script, outside.Path), "/usr/bin/dotnet"));
        Assert.Contains("no .NET host", MissingPrerequisite(outside.Path, TestHost.Dotnet(processPath: "/x/SimClr.Tests", dotnetRoot: "", path: outside.Path)));
        Assert.Null(MissingPrerequisite(outside.Path, "/usr/bin/dotnet"));
        // The host that runs this test is found, never a bare "dotnet" that may not be on PATH.
        var dotnet = TestHost.Dotnet();
        Assert.NotNull(dotnet);
        Assert.True(Path.IsPathRooted(dotnet) && File.Exists(dotnet), dotnet);
    }

    private static string MakeArchive(string dir)
    {
        string bin = Path.Combine(dir, "src", "cifar-10-batches-bin");
        Directory.CreateDirectory(bin);
        var record = new byte[3073];
        foreach (var name in new[] { "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch" })
        {
            using var f = File.Create(Path.Combine(bin, name + ".bin"));
            for (int r = 0; r < 10000; r++)
            {
                record[0] = (byte)(r % 10);
                // The class shows in the pixels (a brightness level per class), so the data is learnable.
                for (int i = 1; i < record.Length; i++) record[i] = (byte)(25 * (r % 10) + (i * 7 + r) % 16);
                f.Write(record);
            }
        }
        File.WriteAllLines(Path.Combine(bin, "batches.meta.txt"), ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
        string archive = Path.Combine(dir, "cifar-10-binary.tar.gz");
        var (code, _, err) = Bash($"tar -czf '{archive}' -C '{Path.Combine(dir, "src")}' cifar-10-batches-bin", null);
        Assert.True(code == 0, err);
        Directory.Delete(Path.Combine(dir, "src"), true);
        return archive;
    }

    private static (int Code, string Out, string Err) Bash(string command, IDictionary<string, string>? env)
    {
        var psi = new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoRoot() };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void ChecksumMismatchStopsBeforeExtractionAndLocalArchiveRunsEndToEnd()
    {
        var dotnet = TestHost.Dotnet();
        if (MissingPrerequisite(TestHost.FolderHolding(Script), dotnet) is { } why) Assert.Skip(why);
        string dir = Directory.CreateTempSubdirectory("simclr-repro").FullName;
        try
        {
            string archive = MakeArchive(dir);
            string data = Path.Combine(dir, "data"), output = Path.Combine(dir, "runs");
            string script = Path.Combine(RepoRoot(), "scripts", "reproduce-cifar10.sh");

            // The generated archive is not the authors' file: the official MD5 must refuse it.
            var bad = Bash($"'{script}' --archive '{archive}' --data '{data}' --out '{output}'", null);
            Assert.Equal(1, bad.Code);
            Assert.Contains("MD5 checksum mismatch", bad.Err);
            Assert.Contains("c32a1d4ab5d03f1284b67883e8d87530", bad.Err);
            Assert.False(Directory.Exists(Path.Combine(data, "cifar-10-batches-bin")));

            string md5 = Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(archive)));
            var env = new Dictionary<string, string> { ["SIMCLR_CMD"] = $"{dotnet} {typeof(CliApp).Assembly.Location}" };
            var ok = Bash($"'{script}' --archive '{archive}' --md5 {md5} --data '{data}' --out '{output}' --device cpu --variant resnet18 " +
                "--epochs 1 --batch-size 32 --width 0.125 --train-subset 64 --test-subset 40 --linear-epochs 2", env);
            Assert.True(ok.Code == 0, ok.Out + ok.Err);
            Assert.Contains("checksum ok", ok.Out);
            Assert.Equal(30_730_000, new FileInfo(Path.Combine(data, "cifar-10-batches-bin", "test_batch.bin")).Length);
            string evalText = File.ReadAllText(Path.Combine(output, "resnet18-500ep", "linear-eval.txt"));
            Assert.Contains("linear evaluation: SimCLR top-1", evalText);
            Assert.Contains("random-init encoder top-1", evalText);
            // The run used the paper's CIFAR settings (from the script) with the smoke-test overrides.
            string config = File.ReadAllText(Path.Combine(output, "resnet18-500ep", "config.json"));
            Assert.Contains("\"temperature\": 0.5", config);
            Assert.Contains("\"color_strength\": 0.5", config);
            Assert.Contains("\"blur\": 0", config);
            Assert.Contains("\"epochs\": 1", config);
        }
        finally { Directory.Delete(dir, true); }
    }
}
