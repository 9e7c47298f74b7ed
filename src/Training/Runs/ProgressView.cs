// Progress display for every phase of a run that takes more than a moment: pretraining steps, feature
// extraction, linear-probe epochs, kNN votes, fine-tuning. Each phase is one row with a bar, its own numbers
// ("step 142/384 | epoch 5/12 | 45 img/s | loss 3.2104 | lr 0.0421", "1200/2500 images | 340 img/s") and
// "elapsed" and "left", the latter from a smoothed rate (EtaEstimator). On an interactive terminal the rows
// are Spectre.Console live bars; when the output is redirected (CI logs) each row prints a plain line at most
// every few seconds and one when it ends; Quiet prints nothing. A row that stops early (Ctrl-C) keeps the
// value it reached. Numbers are invariant-culture and plain decimals (never 9.44E-06).
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using SimClr.Training.Config;

namespace SimClr.Training.Runs;

/// <summary>What a finished row does in the live display: stays (the final evaluation's rows) or goes (a kNN
/// monitor inside pretraining, whose result is a line of its own).</summary>
public enum RowEnd { Keep, Remove }

/// <summary>Where phases report: one row per phase, and lines that must stay in the log.</summary>
public interface IProgressHost
{
    /// <summary>A line that must stay in the log (epoch results, kNN accuracy, warnings).</summary>
    void Message(string line);

    /// <summary>Starts a row for a phase of <paramref name="total"/> <paramref name="unit"/> ("images", "epochs"),
    /// <paramref name="start"/> of them already done. Dispose it when the phase ends, finished or not.</summary>
    IPhase Begin(string title, long total, string unit, long start = 0, RowEnd end = RowEnd.Keep);
}

/// <summary>One phase's row. Report(done) moves the bar; the detail, when given, replaces "done/total unit".</summary>
public interface IPhase : IProgress<long>, IDisposable
{
    void Report(long done, string detail);
}

/// <summary>The pretraining loop's view of the display: a step row plus the host's lines and phases.</summary>
public interface IProgressSink : IProgressHost
{
    /// <summary>After a step: the global step (1-based count of steps done), the 0-based index of the epoch it
    /// belongs to (shown 1-based), throughput, the loss when it was read back, and the step's learning rate.</summary>
    void Update(long step, int epoch, double imagesPerSecond, double? loss, double lr);
}

public static class ProgressView
{
    /// <summary>How long a plain (redirected) row waits between lines.</summary>
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    /// <summary>Plain rows that end within this time print no closing line.</summary>
    private static readonly TimeSpan PlainQuietBelow = TimeSpan.FromSeconds(2);

    private static volatile LiveDisplay? s_live;

    /// <summary>A pretraining-style run: one step row titled <paramref name="title"/>, steps counted from
    /// <paramref name="startStep"/> to <paramref name="totalSteps"/>.</summary>
    public static T Run<T>(ProgressMode mode, TextWriter output, string title, long totalSteps, long startStep, Func<IProgressSink, T> body) =>
        Run(mode, output, title, totalSteps, startStep, totalEpochs: 0, body);

    /// <summary>As above, with the epoch count shown as "epoch e/E" (0 = unknown: "epoch e").</summary>
    public static T Run<T>(ProgressMode mode, TextWriter output, string title, long totalSteps, long startStep, int totalEpochs, Func<IProgressSink, T> body) =>
        Run(mode, output, title, totalSteps, startStep, totalEpochs, body, PlainInterval);

    /// <summary>Tests shorten the plain lines' interval.</summary>
    internal static T Run<T>(ProgressMode mode, TextWriter output, string title, long totalSteps, long startStep, int totalEpochs, Func<IProgressSink, T> body,
        TimeSpan plainInterval) =>
        Phases(mode, output, host =>
        {
            using var row = host.Begin(title, totalSteps, "steps", startStep);
            return body(new StepSink(host, row, totalSteps, totalEpochs));
        }, plainInterval);

    /// <summary>Runs <paramref name="body"/> with a display that its phases add rows to.</summary>
    public static T Phases<T>(ProgressMode mode, TextWriter output, Func<IProgressHost, T> body) => Phases(mode, output, body, PlainInterval);

    internal static T Phases<T>(ProgressMode mode, TextWriter output, Func<IProgressHost, T> body, TimeSpan plainInterval)
    {
        var resolved = Resolve(mode, output);
        if (resolved != ProgressMode.Bars) return body(new LineDisplay(output, resolved == ProgressMode.Quiet, plainInterval));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 24 }, new PercentageColumn(),
                new RowColumn(r => r.Text, Style.Plain), new RowColumn(r => r.Times(), new Style(Color.Grey)))
            .Start(ctx =>
            {
                var live = new LiveDisplay(ctx);
                s_live = live;
                try { result = body(live); }
                finally { s_live = null; }
            });
        return result;
    }

    /// <summary>A phase that counts items instead of training steps (embedding a dataset): one row of
    /// <paramref name="total"/> <paramref name="unit"/>; the body reports how many are done.</summary>
    public static T RunCounted<T>(ProgressMode mode, TextWriter output, string title, string unit, long total, Func<Action<long>, T> body) =>
        Phases(mode, output, host =>
        {
            using var row = host.Begin(title, total, unit);
            return body(row.Report);
        });

    /// <summary>Says <paramref name="line"/> at once on its own line, from any thread (Ctrl-C): above the live bars
    /// when they are shown, else on <paramref name="otherwise"/> (stderr by default).</summary>
    public static void Notice(string line, TextWriter? otherwise = null)
    {
        if (s_live is { } live) live.Message(line);
        else (otherwise ?? Console.Error).WriteLine(line);
    }

    /// <summary>Before the process ends abruptly (an abandoned step): marks the live rows stopped where they are,
    /// draws them once more, and gives the terminal its cursor back.</summary>
    public static void Release()
    {
        if (s_live is not { } live) return;
        live.StopAll();
        AnsiConsole.Cursor.Show();
        AnsiConsole.WriteLine();
    }

    /// <summary>Bars only on an interactive terminal that is this process's own stdout.</summary>
    public static ProgressMode Resolve(ProgressMode mode, TextWriter output) => mode == ProgressMode.Auto
        ? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? ProgressMode.Bars : ProgressMode.Plain)
        : mode;

    /// <summary>A learning rate or other small value as a plain decimal with three significant digits.</summary>
    public static string Plain(double v)
    {
        if (!double.IsFinite(v)) return v.ToString(CultureInfo.InvariantCulture);
        if (v == 0) return "0";
        int decimals = Math.Clamp(2 - (int)Math.Floor(Math.Log10(Math.Abs(v))), 0, 12);
        return v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>m:ss, or h:mm:ss from an hour on.</summary>
    public static string Clock(TimeSpan t) =>
        t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}")
        : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}:{t.Seconds:D2}");

    /// <summary>A duration in words for one-line notices: "45 s", "12 min", "3 h 20 min".</summary>
    public static string Words(TimeSpan t) =>
        t.TotalMinutes < 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:F0} s")
        : t.TotalHours < 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalMinutes:F0} min")
        : string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours} h {t.Minutes} min");

    /// <summary>One phase's numbers, shared by both displays.</summary>
    private sealed class Row(string title, long total, string unit, long start)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly EtaEstimator _eta = new(start);
        private string? _detail;

        public string Title { get; } = title;
        public long Total { get; } = Math.Max(total, 0);
        public long Done { get; private set; } = start;
        public bool Ended { get; private set; }
        public TimeSpan Elapsed => _clock.Elapsed;

        public string Text => _detail ?? string.Create(CultureInfo.InvariantCulture, $"{Done}/{Total} {unit}{Rate()}");

        public void Report(long done, string? detail)
        {
            Done = Math.Clamp(done, 0, Total);
            _detail = detail;
            _eta.Observe(_clock.Elapsed.TotalSeconds, Done);
        }

        public void End()
        {
            Ended = true;
            _clock.Stop();
        }

        public string Times()
        {
            string elapsed = $"elapsed {Clock(_clock.Elapsed)}";
            if (Ended) return Done >= Total ? elapsed : $"{elapsed} | stopped";
            return _eta.SecondsLeft(_clock.Elapsed.TotalSeconds, Total) is { } left
                ? $"{elapsed} | left {Clock(TimeSpan.FromSeconds(left))}" : $"{elapsed} | left …";
        }

        private string Rate() => unit == "images" && _eta.UnitsPerSecond is { } r ? string.Create(CultureInfo.InvariantCulture, $" | {r:F0} img/s") : "";
    }

    private sealed class StepSink(IProgressHost host, IPhase row, long totalSteps, int totalEpochs) : IProgressSink
    {
        private double? _loss;

        public void Update(long step, int epoch, double imagesPerSecond, double? loss, double lr)
        {
            _loss = loss ?? _loss;
            string l = _loss is { } v ? v.ToString("F4", CultureInfo.InvariantCulture) : "…";
            string e = totalEpochs > 0 ? $"{epoch + 1}/{totalEpochs}" : $"{epoch + 1}";
            row.Report(step, string.Create(CultureInfo.InvariantCulture,
                $"step {step}/{totalSteps} | epoch {e} | {imagesPerSecond:F0} img/s | loss {l} | lr {Plain(lr)}"));
        }

        public void Message(string line) => host.Message(line);

        public IPhase Begin(string title, long total, string unit, long start = 0, RowEnd end = RowEnd.Keep) => host.Begin(title, total, unit, start, end);
    }

    private sealed class LiveDisplay(ProgressContext ctx) : IProgressHost
    {
        private readonly Lock _gate = new();
        private readonly List<LivePhase> _phases = [];

        public void StopAll()
        {
            lock (_gate)
            {
                foreach (var phase in _phases) phase.Dispose();
                ctx.Refresh();
            }
        }

        public void Message(string line)
        {
            lock (_gate) AnsiConsole.MarkupLine(Markup.Escape(line));
        }

        public IPhase Begin(string title, long total, string unit, long start = 0, RowEnd end = RowEnd.Keep)
        {
            var row = new Row(title, total, unit, start);
            var task = ctx.AddTask(Markup.Escape(title), autoStart: true, maxValue: Math.Max(row.Total, 1));
            task.Tag = row;
            task.Value = row.Done;
            var phase = new LivePhase(row, task, end == RowEnd.Remove ? () => ctx.RemoveTask(task) : null);
            lock (_gate) _phases.Add(phase);
            return phase;
        }
    }

    private sealed class LivePhase(Row row, ProgressTask task, Action? remove) : IPhase
    {
        public void Report(long done) => Apply(done, null);

        public void Report(long done, string detail) => Apply(done, detail);

        private void Apply(long done, string? detail)
        {
            row.Report(done, detail);
            task.Value = row.Done;
        }

        public void Dispose()
        {
            if (row.Ended) return;
            row.End();
            task.StopTask();
            remove?.Invoke();
        }
    }

    private sealed class RowColumn(Func<Row, string> text, Style style) : ProgressColumn
    {
        protected override bool NoWrap => true;

        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            task.Tag is Row row ? new Text(text(row), style) : Text.Empty;
    }

    private sealed class LineDisplay(TextWriter output, bool quiet, TimeSpan interval) : IProgressHost
    {
        public TimeSpan Interval => interval;

        public void Message(string line)
        {
            if (!quiet) output.WriteLine(line);
        }

        public IPhase Begin(string title, long total, string unit, long start = 0, RowEnd end = RowEnd.Keep) => new LinePhase(this, new Row(title, total, unit, start));

        public void Line(Row row) => Message($"{row.Title}: {row.Text} | {row.Times()}");
    }

    private sealed class LinePhase(LineDisplay display, Row row) : IPhase
    {
        private TimeSpan _lastLine;
        private bool _printed;

        public void Report(long done) => Apply(done, null);

        public void Report(long done, string detail) => Apply(done, detail);

        private void Apply(long done, string? detail)
        {
            row.Report(done, detail);
            if (row.Elapsed - _lastLine < display.Interval) return;
            _lastLine = row.Elapsed;
            _printed = true;
            display.Line(row);
        }

        public void Dispose()
        {
            if (row.Ended) return;
            row.End();
            if (_printed || row.Elapsed >= PlainQuietBelow || display.Interval == TimeSpan.Zero) display.Line(row);
        }
    }
}
