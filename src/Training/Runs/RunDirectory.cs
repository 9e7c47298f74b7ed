// One folder per run: config.json, metrics.jsonl (one JSON object per line, appended as the run goes) with
// the same records in metrics.csv and a TensorBoard event file, plots, checkpoints/ and summary.json.
// Records: {"kind", "step", "epoch", "time" (unix seconds), values...}. Epochs count from 1: a "step" record
// carries the epoch its step belongs to, an "epoch" or "knn" record the epoch just completed, and epoch 0 is
// the encoder before any step (the random-init kNN baseline). "step" is the number of optimizer steps done.
// Where that folder is, and what a run may do to it:
//   - a fresh run uses --out, or runs/<--name>, or runs/<UTC timestamp>; --name is one plain folder name, so a
//     run cannot land outside runs/; a folder that already holds another run (config, metrics, summary or
//     checkpoints) is refused, never overwritten;
//   - --resume A continues in A's own run folder (the folder above A's checkpoints/); with --out or --name
//     naming another folder it continues into a copy there (the metrics so far are copied, A's folder is not
//     touched) and says so; that folder too must not hold another run;
//   - Plan decides all this without touching the disk, so a refusal costs nothing; Create makes the folders,
//     checks they can be written (a read-only folder is one line before any training), and removes the
//     temporary files a killed run left there.
// Every file here is written atomically (Io/AtomicFile) except the three metrics logs, which grow by appends:
// an append that fails is cut back, so each file always holds whole records and the earlier ones are untouched.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Io;

namespace SimClr.Training.Runs;

/// <summary>How a run uses its folder.</summary>
public enum RunPlacement { Fresh, ResumeInPlace, ResumeIntoCopy }

public sealed class RunDirectory
{
    public const string RunsFolder = "runs";
    private static readonly string[] RunFiles = ["config.json", "metrics.jsonl", "summary.json"];

    private RunDirectory(string root, RunPlacement placement, string? origin)
    {
        Root = root;
        Placement = placement;
        Origin = origin;
    }

    public string Root { get; }
    public RunPlacement Placement { get; }
    /// <summary>The run folder a resumed run continues from (null for a fresh run).</summary>
    public string? Origin { get; }
    public string ConfigPath => Path.Combine(Root, "config.json");
    public string MetricsPath => Path.Combine(Root, "metrics.jsonl");
    public string SummaryPath => Path.Combine(Root, "summary.json");
    public string CheckpointDir => Path.Combine(Root, "checkpoints");

    /// <summary>Decides the folder for <paramref name="config"/> (resuming when config.Resume is set) and refuses
    /// one that holds another run. Nothing is created yet.</summary>
    public static RunDirectory Plan(RunConfig config, string? commandName = null)
    {
        if (config.Resume is { } resume) return PlanResume(config, resume);
        string root = config.Out ?? Path.Combine(RunsFolder, config.Name ?? UniqueStamp(commandName));
        var dir = new RunDirectory(Path.GetFullPath(root), RunPlacement.Fresh, null);
        dir.RequireNoOtherRun(config.Out is not null ? "--out" : "--name", "choose a new --out or --name, or pass --resume to continue that run");
        return dir;
    }

    private static RunDirectory PlanResume(RunConfig config, string resume)
    {
        string? origin = RunFolderOf(Path.GetFullPath(resume));
        string? target = config.Out ?? (config.Name is { } name ? Path.Combine(RunsFolder, name) : origin);
        if (target is null)
            throw UserError.Option("--resume", $"{resume} is not inside a run's checkpoints/ folder, so there is no run folder to continue in; pass --out DIR to continue into a new folder");
        target = Path.GetFullPath(target);
        if (origin is not null && SameFolder(target, origin)) return new RunDirectory(origin, RunPlacement.ResumeInPlace, origin);
        var dir = new RunDirectory(target, RunPlacement.ResumeIntoCopy, origin);
        dir.RequireNoOtherRun(config.Out is not null ? "--out" : "--name",
            "--resume continues in the checkpoint's own run folder when --out and --name are not given, or into a copy in a new folder");
        return dir;
    }

    /// <summary>Creates the folders, checks they can be written, removes stale temporary files and, when
    /// continuing into a copy, copies the metrics so far. Returns lines worth telling the user.</summary>
    public IReadOnlyList<string> Create()
    {
        var notes = new List<string>();
        try
        {
            try
            {
                Directory.CreateDirectory(Root);
                Directory.CreateDirectory(CheckpointDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailure.For(Root, e); }
            RequireWritable(Root);
            RequireWritable(CheckpointDir);
            var stale = AtomicFile.RemoveStale(Root).Concat(AtomicFile.RemoveStale(CheckpointDir)).ToList();
            if (stale.Count > 0)
                notes.Add($"removed {stale.Count} temporary file(s) left by a run that was killed while writing: {string.Join(", ", stale.Select(Path.GetFileName))}");
        }
        catch (UserError e) when (Placement == RunPlacement.ResumeInPlace)
        {
            throw new UserError($"{e.Message}; or pass --out NEW to continue this run into a copy in another folder", e.Code);
        }
        if (Placement == RunPlacement.ResumeIntoCopy)
        {
            string? metrics = Origin is null ? null : Path.Combine(Origin, "metrics.jsonl");
            if (metrics is not null && Path.Exists(metrics)) AtomicFile.Write(MetricsPath, SafeFile.ReadAll(metrics, MetricsLog.MaxBytes));
            notes.Add(Origin is null
                ? $"continuing into a new run folder {Root}"
                : $"continuing into a copy in {Root}; the checkpoint's own run folder {Origin} is left as it was");
        }
        return notes;
    }

    public void WriteConfig(RunConfig config) => AtomicFile.WriteText(ConfigPath, config.ToJson());

    public void WriteSummary(JsonObject summary) =>
        AtomicFile.WriteText(SummaryPath, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The run folder of a checkpoint at <paramref name="checkpoint"/>: the folder above its
    /// checkpoints/ folder, or null when it is not in one.</summary>
    private static string? RunFolderOf(string checkpoint)
    {
        string? folder = Path.GetDirectoryName(checkpoint);
        return folder is not null && Path.GetFileName(folder) == "checkpoints" ? Path.GetDirectoryName(folder) : null;
    }

    private static bool SameFolder(string a, string b) =>
        SafeFile.SameFile(a, b) || string.Equals(Path.TrimEndingDirectorySeparator(a), Path.TrimEndingDirectorySeparator(b), StringComparison.Ordinal);

    private void RequireNoOtherRun(string option, string hint)
    {
        if (SafeFile.KindOf(Root) is { } kind && kind != FileKind.Directory)
            throw UserError.Option(option, $"{Root} exists and is not a folder");
        if (!Directory.Exists(Root)) return;
        var found = RunFiles.Where(f => Path.Exists(Path.Combine(Root, f))).ToList();
        if (Directory.Exists(CheckpointDir) && Directory.EnumerateFiles(CheckpointDir, "*.safetensors").Any()) found.Add("checkpoints/");
        if (found.Count > 0)
            throw UserError.Option(option, $"{Root} already holds another run ({string.Join(", ", found)}); {hint}");
    }

    private static void RequireWritable(string folder)
    {
        try
        {
            using var probe = new FileStream(Path.Combine(folder, $".write-check{AtomicFile.TempMarker}{Environment.ProcessId}"),
                FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailure.For(folder, e); }
    }

    /// <summary>runs/&lt;UTC timestamp&gt;[-command], with -2, -3, ... when a run started in the same second.</summary>
    private static string UniqueStamp(string? commandName)
    {
        string stem = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + (commandName is null ? "" : "-" + commandName);
        string name = stem;
        for (int i = 2; Path.Exists(Path.Combine(RunsFolder, name)); i++) name = $"{stem}-{i}";
        return name;
    }
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
    /// <summary>A metrics file larger than this is not one this program wrote (a long run writes megabytes).</summary>
    public const long MaxBytes = 1L << 30;

    private readonly string _path;
    private readonly List<MetricRecord> _records = [];
    private readonly MetricsCsv _csv;
    private readonly TensorBoardLog _events;

    private MetricsLog(string path, long? resumedAt)
    {
        _path = path;
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        _csv = new MetricsCsv(Path.Combine(dir, "metrics.csv"));
        _events = new TensorBoardLog(dir);
        if (resumedAt is long step && Path.Exists(path))
        {
            Reload(path);
            // A resumed run replays the steps after its checkpoint, so their records go. The file is replaced
            // atomically: a failure keeps every earlier record.
            _records.RemoveAll(r => r.Step > step);
        }
        AtomicFile.WriteText(path, string.Concat(_records.Select(r => Format(r) + "\n")));
        _csv.Rewrite(_records);
        _events.Rewrite(_records);
    }

    /// <summary>The logs of a new run: all three files start empty.</summary>
    public static MetricsLog Start(string path) => new(path, null);

    /// <summary>The logs of a run resumed from the checkpoint at <paramref name="step"/>: the records up to it are
    /// kept, and metrics.jsonl, metrics.csv and the TensorBoard file are each rewritten once to hold only those.</summary>
    public static MetricsLog Resume(string path, long step) => new(path, step);

    public IReadOnlyList<MetricRecord> Records => _records;

    public string CsvPath => _csv.Path;
    public string EventsPath => _events.Path;

    public void Append(MetricRecord r)
    {
        if (r.Time is null) r = r with { Time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0 };
        _records.Add(r);
        AtomicFile.Append(_path, Encoding.UTF8.GetBytes(Format(r) + "\n"));
        _csv.Append(r, _records);
        _events.Append(r);
    }

    private static string Format(MetricRecord r)
    {
        var o = new JsonObject { ["kind"] = r.Kind, ["step"] = r.Step, ["epoch"] = r.Epoch, ["time"] = r.Time };
        foreach (var (k, v) in r.Values) o[k] = double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));
        return o.ToJsonString();
    }

    private void Reload(string path)
    {
        foreach (var line in SafeFile.ReadText(path, MaxBytes).Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonNode.Parse(line) is not JsonObject o
                    || o["kind"] is not JsonValue kindValue || !kindValue.TryGetValue(out string? kind)
                    || o["step"] is not JsonValue stepValue || !stepValue.TryGetValue(out long step)
                    || o["epoch"] is not JsonValue epochValue || !epochValue.TryGetValue(out int epoch)) continue;
                var values = new Dictionary<string, double>();
                foreach (var (k, v) in o)
                    if (k is not ("kind" or "step" or "epoch" or "time") && v is JsonValue jv && jv.TryGetValue(out double d)) values[k] = d;
                double? time = o["time"] is JsonValue t && t.TryGetValue(out double seconds) ? seconds : null;
                _records.Add(new MetricRecord(kind, step, epoch, values) { Time = time });
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
            {
                // A line that is not a record (torn by a kill, edited by hand) is skipped; the rest still counts.
            }
        }
    }
}
