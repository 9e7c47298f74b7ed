// One folder per run: config.json, metrics.jsonl (one JSON object per line, appended as the run goes) with
// the same records in metrics.csv and a TensorBoard event file, plots, checkpoints/ and summary.json. The
// folder is ./runs/<name or UTC timestamp> unless --out names it.
// Records: {"kind", "step", "epoch", "time" (unix seconds), values...}. Epochs count from 1: a "step" record
// carries the epoch its step belongs to, an "epoch" or "knn" record the epoch just completed, and epoch 0 is
// the encoder before any step (the random-init kNN baseline). "step" is the number of optimizer steps done.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;

namespace SimClr.Training.Runs;

public sealed class RunDirectory
{
    private RunDirectory(string root) => Root = root;

    public string Root { get; }
    public string ConfigPath => Path.Combine(Root, "config.json");
    public string MetricsPath => Path.Combine(Root, "metrics.jsonl");
    public string SummaryPath => Path.Combine(Root, "summary.json");
    public string CheckpointDir => Path.Combine(Root, "checkpoints");

    /// <summary>Opens (creating if needed) the directory for a run. A fresh run refuses a directory that
    /// already holds checkpoints, so nothing from an earlier run is overwritten; a resumed run reuses it.</summary>
    public static RunDirectory Open(RunConfig config, bool resuming, string? commandName = null)
    {
        string root = config.Out ?? Path.Combine("runs", config.Name ?? DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + (commandName is null ? "" : "-" + commandName));
        var dir = new RunDirectory(Path.GetFullPath(root));
        if (!resuming && Directory.Exists(dir.CheckpointDir) && Directory.EnumerateFiles(dir.CheckpointDir, "*.safetensors").Any())
            throw UserError.Option("--out", $"{dir.Root} already holds checkpoints from another run; choose a new --out or pass --resume");
        try
        {
            Directory.CreateDirectory(dir.Root);
            Directory.CreateDirectory(dir.CheckpointDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.Option("--out", $"cannot create {dir.Root} ({e.Message})");
        }
        return dir;
    }

    public void WriteConfig(RunConfig config) => AtomicFile.WriteText(ConfigPath, config.ToJson());

    public void WriteSummary(JsonObject summary) =>
        AtomicFile.WriteText(SummaryPath, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}

/// <summary>One metrics record: its kind (step, epoch, knn, eval, diverged), named numbers, and the wall time
/// (unix seconds) it was logged at, which MetricsLog.Append fills in.</summary>
public sealed record MetricRecord(string Kind, long Step, int Epoch, IReadOnlyDictionary<string, double> Values)
{
    public double? Time { get; init; }
}

/// <summary>Appends one JSON line per record, and the same record to metrics.csv and the TensorBoard file; keeps
/// them in memory for the plots.</summary>
public sealed class MetricsLog
{
    private readonly string _path;
    private readonly List<MetricRecord> _records = [];
    private readonly MetricsCsv _csv;
    private readonly TensorBoardLog _events;

    public MetricsLog(string path, bool resuming)
    {
        _path = path;
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        _csv = new MetricsCsv(Path.Combine(dir, "metrics.csv"));
        _events = new TensorBoardLog(dir);
        if (resuming && File.Exists(path)) Reload(path);
        else File.WriteAllText(path, "");
        _csv.Rewrite(_records);
        _events.Rewrite(_records);
    }

    public IReadOnlyList<MetricRecord> Records => _records;

    public string CsvPath => _csv.Path;
    public string EventsPath => _events.Path;

    public void Append(MetricRecord r)
    {
        if (r.Time is null) r = r with { Time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 };
        _records.Add(r);
        AppendLine(r);
        _csv.Append(r, _records);
        _events.Append(r);
    }

    private void AppendLine(MetricRecord r)
    {
        var o = new JsonObject { ["kind"] = r.Kind, ["step"] = r.Step, ["epoch"] = r.Epoch, ["time"] = r.Time };
        foreach (var (k, v) in r.Values) o[k] = double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));
        File.AppendAllText(_path, o.ToJsonString() + "\n");
    }

    /// <summary>A resumed run drops records past its checkpoint, since those steps are replayed.</summary>
    public void TruncateAfter(long step)
    {
        _records.RemoveAll(r => r.Step > step);
        File.WriteAllText(_path, "");
        foreach (var r in _records) AppendLine(r);
        _csv.Rewrite(_records);
        _events.Rewrite(_records);
    }

    private void Reload(string path)
    {
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? o;
            try { o = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { continue; }
            if (o is null || o["kind"] is not JsonValue kind || o["step"] is not JsonValue step || o["epoch"] is not JsonValue epoch) continue;
            var values = new Dictionary<string, double>();
            foreach (var (k, v) in o)
                if (k is not ("kind" or "step" or "epoch" or "time") && v is JsonValue jv && jv.TryGetValue(out double d)) values[k] = d;
            double? time = o["time"] is JsonValue t && t.TryGetValue(out double seconds) ? seconds : null;
            _records.Add(new MetricRecord(kind.GetValue<string>(), step.GetValue<long>(), epoch.GetValue<int>(), values) { Time = time });
        }
    }
}
