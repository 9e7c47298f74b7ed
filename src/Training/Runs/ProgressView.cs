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
    public static T Run<T>(ProgressMode mode, TextWriter output, string title, long totalSteps, long startStep, Func<IProgressSink, T> body)
    {
        var resolved = mode == ProgressMode.Auto
            ? (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? ProgressMode.Bars : ProgressMode.Plain)
            : mode;
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
