// What a suite reports: one row per benchmark (timing, achieved rates, the roofline it is held
// against, the memory it holds) and the context that makes a figure meaningful (machine, commit,
// measured peaks, system load). Rendered as a markdown table on stdout and as JSON for compare.py.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SimClr.Benchmarks;

/// <summary>The compulsory work of one run: floating-point operations and bytes moved to and from memory.
/// Items counts what a user thinks in (images, parameters, rows); Unit names them.</summary>
public sealed record Work(double Flops, double Bytes, double Items = 0, string Unit = "");

/// <summary>The device's ceilings, measured by the suite itself on the machine it runs on.</summary>
public sealed record Roofline(double PeakGflops, double BandwidthGBps, string PeakMethod, string BandwidthMethod)
{
    /// <summary>Arithmetic intensity (flop/byte) above which a kernel is math-bound.</summary>
    public double Ridge => PeakGflops / BandwidthGBps;
}

public enum Bound { Math, Memory }

public sealed record BenchResult
{
    public required string Key { get; init; }
    public required string Group { get; init; }
    public required string Shape { get; init; }
    public required double MedianMs { get; init; }
    public required double MinMs { get; init; }
    public required double P90Ms { get; init; }
    public required int Samples { get; init; }
    public required int RepetitionsPerSample { get; init; }
    public double Flops { get; init; }
    public double Bytes { get; init; }
    public double? Gflops { get; init; }
    public double? GBps { get; init; }
    public double? ItemsPerSecond { get; init; }
    public string? ItemUnit { get; init; }
    [JsonConverter(typeof(JsonStringEnumConverter<Bound>))]
    public Bound Bound { get; init; }
    public double RooflinePercent { get; init; }
    /// <summary>The same at the fastest sample: on a shared machine the closest figure to what the code can do.</summary>
    public double RooflinePercentAtMin { get; init; }
    public long MemoryBytes { get; init; }
    public string? MemoryKind { get; init; }
    public string? Note { get; init; }

    public static BenchResult From(string key, string group, string shape, Timing t, Work w, Roofline roof, long memoryBytes, string memoryKind, string? note = null)
    {
        double s = t.MedianSeconds;
        double? gflops = w.Flops > 0 ? w.Flops / s / 1e9 : null;
        double? gbps = w.Bytes > 0 ? w.Bytes / s / 1e9 : null;
        // The attainable rate is min(peak, intensity × bandwidth): above the ridge a kernel is held against
        // the peak flop rate, below it (or with no counted flops) against bandwidth, i.e. its bytes per second.
        bool math = w.Flops > 0 && (w.Bytes <= 0 || w.Flops / w.Bytes >= roof.Ridge);
        double Percent(double seconds) => math
            ? 100 * w.Flops / seconds / 1e9 / roof.PeakGflops
            : 100 * w.Bytes / seconds / 1e9 / roof.BandwidthGBps;
        return new BenchResult
        {
            Key = key, Group = group, Shape = shape,
            MedianMs = t.MedianSeconds * 1e3, MinMs = t.MinSeconds * 1e3, P90Ms = t.P90Seconds * 1e3,
            Samples = t.Samples, RepetitionsPerSample = t.RepetitionsPerSample,
            Flops = w.Flops, Bytes = w.Bytes, Gflops = gflops, GBps = gbps,
            ItemsPerSecond = w.Items > 0 ? w.Items / s : null, ItemUnit = w.Items > 0 ? w.Unit : null,
            Bound = math ? Bound.Math : Bound.Memory, RooflinePercent = Percent(t.MedianSeconds), RooflinePercentAtMin = Percent(t.MinSeconds),
            MemoryBytes = memoryBytes, MemoryKind = memoryKind, Note = note,
        };
    }
}

public sealed class SuiteReport
{
    public required string Suite { get; init; }
    public required string Sizes { get; init; }
    public required string Device { get; init; }
    public required string Clock { get; init; }
    public string DateUtc { get; init; } = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
    public string Commit { get; init; } = Environments.Commit();
    public string Machine { get; init; } = Environments.Machine();
    public string Runtime { get; init; } = RuntimeInformation.FrameworkDescription;
    public string LoadBefore { get; init; } = Environments.LoadAverage();
    public string LoadAfter { get; set; } = "";
    public Roofline? Roofline { get; set; }
    public List<BenchResult> Results { get; } = [];

    /// <summary>Where the JSON is rewritten after every row, so a run cut short keeps what it measured.</summary>
    [JsonIgnore] public string? AutosavePath { get; init; }

    public void Add(BenchResult row)
    {
        Results.Add(row);
        if (AutosavePath is not null) WriteJson(AutosavePath);
    }
    public List<string> Notes { get; } = [];
    public List<string> Failures { get; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Keep ×, ², τ readable: the file is read by people and by compare.py, never embedded in HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public void WriteJson(string path)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, JsonSerializer.Serialize(this, Json));
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## SimClr.Native benchmarks: {Suite} ({Sizes})");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"- date: {DateUtc}; commit: {Commit}; runtime: {Runtime}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- device: {Device}; machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- load average (1/5/15 min) before: {LoadBefore}; after: {LoadAfter}");
        if (Roofline is { } r)
            sb.AppendLine(CultureInfo.InvariantCulture, $"- roofline (measured): peak {r.PeakGflops:F1} GFLOP/s ({r.PeakMethod}); bandwidth {r.BandwidthGBps:F1} GB/s ({r.BandwidthMethod}); ridge {r.Ridge:F1} flop/byte");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- timing: {Clock}; warm-up, then the median (min, p90) of ≥ {BenchOptions.MinimumSamples} samples per run");
        foreach (var note in Notes) sb.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        foreach (var failure in Failures) sb.AppendLine(CultureInfo.InvariantCulture, $"- FAILED {failure}");
        sb.AppendLine();
        sb.AppendLine("| benchmark | shape | median ms | min ms | p90 ms | GFLOP/s | GB/s | throughput | bound | % roofline | % at min | memory |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
        foreach (var x in Results)
        {
            string items = x.ItemsPerSecond is { } ips ? $"{Si(ips)} {x.ItemUnit}/s" : "";
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {x.Key} | {x.Shape} | {x.MedianMs:G4} | {x.MinMs:G4} | {x.P90Ms:G4} | {Opt(x.Gflops)} | {Opt(x.GBps)} | {items} | {x.Bound.ToString().ToLowerInvariant()} | {x.RooflinePercent:F1} | {x.RooflinePercentAtMin:F1} | {Mib(x.MemoryBytes)} |");
        }
        return sb.ToString();
    }

    private static string Opt(double? v) => v is { } x ? x.ToString("F1", CultureInfo.InvariantCulture) : "";
    private static string Mib(long bytes) => bytes switch
    {
        <= 0 => "",
        < 1 << 20 => (bytes / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " KiB",
        _ => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MiB",
    };
    private static string Si(double v) => v switch
    {
        >= 1e9 => (v / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " G",
        >= 1e6 => (v / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " M",
        >= 1e3 => (v / 1e3).ToString("F2", CultureInfo.InvariantCulture) + " k",
        _ => v.ToString("F1", CultureInfo.InvariantCulture),
    };
}

/// <summary>Facts about where a run happened: commit, CPU model, load. Each degrades to "unknown"
/// rather than failing, because the bundle runs outside a git checkout.</summary>
public static class Environments
{
    public static string Commit()
    {
        if (Environment.GetEnvironmentVariable("SIMCLR_COMMIT") is { Length: > 0 } c) return c;
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (p is null) return "unknown";
            string sha = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            if (p.ExitCode != 0 || sha.Length == 0) return "unknown";
            using var dirty = Process.Start(new ProcessStartInfo("git", "status --porcelain --untracked-files=no")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            string changes = dirty?.StandardOutput.ReadToEnd() ?? "";
            dirty?.WaitForExit();
            return changes.Trim().Length > 0 ? sha + "+dirty" : sha;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    public static string Machine()
    {
        string model = "unknown CPU";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) { model = line[(line.IndexOf(':') + 1)..].Trim(); break; }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        string isa = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit SIMD";
        return $"{model}, {Environment.ProcessorCount} logical cores, {isa}, {RuntimeInformation.OSDescription}";
    }

    public static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(" / ", parts.Take(3));
        }
        catch (IOException) { return "unknown"; }
        catch (UnauthorizedAccessException) { return "unknown"; }
    }
}
