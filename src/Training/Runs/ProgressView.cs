// Progress display for a training loop: Spectre.Console live bars (images/s, loss, lr, ETA) on an interactive
// terminal, plain periodic lines when the output is redirected (CI logs), or nothing at all for tests.
using System.Globalization;
using Spectre.Console;
using SimClr.Training.Config;

namespace SimClr.Training.Runs;

public interface IProgressSink
{
    void Update(long step, int epoch, double imagesPerSecond, double? loss, double lr);
    /// <summary>A line that must stay in the log (epoch results, kNN accuracy, warnings).</summary>
    void Message(string line);
}

public static class ProgressView
{
    private static ProgressMode Resolve(ProgressMode mode, TextWriter output) => mode == ProgressMode.Auto
        ? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? ProgressMode.Bars : ProgressMode.Plain)
        : mode;

    public static T Run<T>(ProgressMode mode, TextWriter output, string title, long totalSteps, long startStep, Func<IProgressSink, T> body)
    {
        var resolved = Resolve(mode, output);
        if (resolved != ProgressMode.Bars) return body(new PlainSink(output, totalSteps, resolved == ProgressMode.Quiet));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: totalSteps);
                task.Value = startStep;
                result = body(new BarSink(task, title));
                task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>A phase that counts items instead of training steps (embedding a dataset): a bar with n/N and
    /// items/s on a terminal, a plain line every few seconds when redirected, nothing when quiet. The body
    /// reports how many items are done.</summary>
    public static T RunCounted<T>(ProgressMode mode, TextWriter output, string title, string unit, long total, Func<Action<long>, T> body)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string Line(long done) => string.Create(CultureInfo.InvariantCulture,
            $"{title} {done}/{total} {unit} | {done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F0} {unit}/s");
        var resolved = Resolve(mode, output);
        if (resolved == ProgressMode.Quiet) return body(_ => { });
        if (resolved == ProgressMode.Plain)
        {
            var last = DateTime.MinValue;
            return body(done =>
            {
                var now = DateTime.UtcNow;
                if (now - last < TimeSpan.FromSeconds(5) && done < total) return;
                last = now;
                output.WriteLine(Line(done));
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(title, maxValue: total);
                result = body(done =>
                {
                    task.Value = done;
                    task.Description = Markup.Escape(Line(done));
                });
                task.Value = task.MaxValue;
            });
        return result;
    }

    private sealed class BarSink(ProgressTask task, string title) : IProgressSink
    {
        public void Update(long step, int epoch, double imagesPerSecond, double? loss, double lr)
        {
            task.Value = step;
            string l = loss is { } v ? v.ToString("F4", CultureInfo.InvariantCulture) : "…";
            task.Description = Markup.Escape($"{title} epoch {epoch + 1} | {imagesPerSecond:F0} img/s | loss {l} | lr {lr:G3}");
        }

        public void Message(string line) => AnsiConsole.MarkupLine(Markup.Escape(line));
    }

    private sealed class PlainSink(TextWriter output, long totalSteps, bool quiet) : IProgressSink
    {
        private DateTime _last = DateTime.MinValue;

        public void Update(long step, int epoch, double imagesPerSecond, double? loss, double lr)
        {
            if (quiet || loss is null) return;
            var now = DateTime.UtcNow;
            if (now - _last < TimeSpan.FromSeconds(5) && step < totalSteps) return;
            _last = now;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {step}/{totalSteps} epoch {epoch + 1} | {imagesPerSecond:F0} img/s | loss {loss:F4} | lr {lr:G3}"));
        }

        public void Message(string line)
        {
            if (!quiet) output.WriteLine(line);
        }
    }
}
