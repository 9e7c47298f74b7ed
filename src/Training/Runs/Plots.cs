// PNG plots of a run with ScottPlot 5, redrawn from the metrics records after each epoch (so a crashed run
// still has them) and once more after the final evaluation:
//   loss.png       the per-step NT-Xent loss, faint, with a smoothed line (debiased EMA) and the epoch ends;
//   lr.png         the learning rate per step (warmup, cosine), with the epoch ends;
//   knn.png        kNN top-1 in % at each epoch end, from epoch 0 (the random-init encoder, also drawn as the
//                  baseline line), with the final linear top-1 of both encoders marked once evaluated;
//   dashboard.png  loss, lr and kNN side by side with the final table, for a glance.
// A plot without a single point is not written (and a stale one from a truncated, resumed run is removed), so
// `--eval none` leaves no empty knn.png. Axes stay sensible for one point: a kNN curve of one epoch spans a
// whole epoch either side and at least ten points of accuracy. Each PNG replaces the last atomically (Io/AtomicFile).
using ScottPlot;
using SimClr.Training.Cli;
using SimClr.Training.Io;

namespace SimClr.Training.Runs;

public static class Plots
{
    private const int Width = 800, Height = 500;

    public static readonly string[] Files = ["loss.png", "lr.png", "knn.png", "dashboard.png"];

    public static void Write(string root, IReadOnlyList<MetricRecord> records)
    {
        var run = RunSeries.From(records);
        Save(Path.Combine(root, "loss.png"), run.Loss.Length > 0 ? p => Loss(p, run) : null, Width, Height);
        Save(Path.Combine(root, "lr.png"), run.Lr.Length > 0 ? p => Lr(p, run) : null, Width, Height);
        Save(Path.Combine(root, "knn.png"), run.Knn.Length > 0 ? p => Knn(p, run) : null, Width, Height);
        SaveDashboard(Path.Combine(root, "dashboard.png"), run);
    }

    /// <summary>What the plots draw, taken from the records once.</summary>
    internal sealed record RunSeries(
        (double Step, double Value)[] Loss, (double Step, double Value)[] Lr, double[] EpochEnds,
        (double Epoch, double Percent)[] Knn, double? BaselinePercent, IReadOnlyDictionary<string, double>? Eval, int Epochs, long Steps)
    {
        public static RunSeries From(IReadOnlyList<MetricRecord> records)
        {
            var steps = records.Where(r => r.Kind == "step").ToList();
            (double, double)[] Series(string name) =>
                [.. steps.Where(r => r.Values.TryGetValue(name, out var v) && double.IsFinite(v)).Select(r => ((double)r.Step, r.Values[name]))];
            var knn = records.Where(r => r.Kind == "knn" && r.Values.TryGetValue("knn_top1", out var v) && double.IsFinite(v))
                .GroupBy(r => r.Epoch).Select(g => ((double)g.Key, 100 * g.Last().Values["knn_top1"])).OrderBy(p => p.Item1).ToArray();
            var eval = records.LastOrDefault(r => r.Kind == "eval")?.Values;
            double? baseline = knn.Length > 0 && knn[0].Item1 == 0 ? knn[0].Item2
                : eval is not null && eval.TryGetValue("random_knn_top1", out var rk) ? 100 * rk : null;
            var epochs = records.Where(r => r.Kind == "epoch").ToList();
            return new RunSeries(Series("loss"), Series("lr"), [.. epochs.Select(r => (double)r.Step)], knn, baseline, eval,
                epochs.Count > 0 ? epochs.Max(r => r.Epoch) : 0, records.Count > 0 ? records.Max(r => r.Step) : 0);
        }
    }

    internal static void Loss(Plot plot, RunSeries run)
    {
        var (xs, ys) = PerStep(plot, "NT-Xent loss", "loss", run.Loss, run);
        var raw = plot.Add.ScatterLine(xs, ys, Colors.SteelBlue.WithAlpha(0.45));
        raw.LineWidth = 1;
        raw.MarkerSize = xs.Length == 1 ? 6 : 0;
        raw.LegendText = "per step";
        int span = SmoothingSpan(xs.Length);
        var smooth = plot.Add.ScatterLine(xs, Smoothed(ys, span), Colors.Navy);
        smooth.LineWidth = 2.5f;
        smooth.MarkerSize = 0;
        smooth.LegendText = $"smoothed (EMA, span {span} steps)";
        plot.ShowLegend(Alignment.UpperRight);
        Frame(plot, xs, ys);
    }

    internal static void Lr(Plot plot, RunSeries run)
    {
        var (xs, ys) = PerStep(plot, "Learning rate (LARS, warmup + cosine)", "lr", run.Lr, run);
        var line = plot.Add.ScatterLine(xs, ys, Colors.DarkOrange);
        line.LineWidth = 2;
        line.MarkerSize = xs.Length == 1 ? 6 : 0;
        Frame(plot, xs, ys, includeZero: true);
    }

    /// <summary>The title, labels and epoch ends of a plot over steps; <paramref name="series"/> as x and y arrays.</summary>
    private static (double[] Xs, double[] Ys) PerStep(Plot plot, string title, string yLabel, (double Step, double Value)[] series, RunSeries run)
    {
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        EpochEnds(plot, run);
        return ([.. series.Select(p => p.Step)], [.. series.Select(p => p.Value)]);
    }

    internal static void Knn(Plot plot, RunSeries run)
    {
        plot.Title("kNN top-1 on frozen features h");
        plot.XLabel("epoch");
        plot.YLabel("top-1 accuracy (%)");
        var xs = run.Knn.Select(p => p.Epoch).ToArray();
        var ys = run.Knn.Select(p => p.Percent).ToArray();
        var values = ys.ToList();
        if (run.BaselinePercent is { } b)
        {
            var line = plot.Add.HorizontalLine(b, 1.5f, Colors.Gray, LinePattern.Dashed);
            line.LegendText = $"random-init encoder, kNN {b:F1} %";
            values.Add(b);
        }
        var curve = plot.Add.ScatterLine(xs, ys, Colors.SeaGreen);
        curve.LineWidth = 2;
        curve.MarkerSize = 7;
        curve.LegendText = "SimCLR encoder, kNN";
        double lastEpoch = Math.Max(xs.Max(), run.Epochs);
        if (run.Eval is { } eval)
        {
            if (eval.TryGetValue("linear_top1", out var lin) && double.IsFinite(lin))
            {
                var m = plot.Add.Marker(lastEpoch, 100 * lin, MarkerShape.FilledDiamond, 12, Colors.Crimson);
                m.LegendText = $"SimCLR linear top-1 {100 * lin:F1} %";
                values.Add(100 * lin);
            }
            if (eval.TryGetValue("random_linear_top1", out var rlin) && double.IsFinite(rlin))
            {
                var m = plot.Add.Marker(lastEpoch, 100 * rlin, MarkerShape.OpenDiamond, 12, Colors.Crimson);
                m.LegendText = $"random-init linear top-1 {100 * rlin:F1} %";
                values.Add(100 * rlin);
            }
        }
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        double lo = values.Min(), hi = values.Max();
        double pad = Math.Max(2, (hi - lo) * 0.1);
        if (hi - lo + 2 * pad < 10) pad = (10 - (hi - lo)) / 2;
        double xmin = xs.Min(), xmax = lastEpoch;
        plot.Axes.SetLimits(Math.Max(-0.5, xmin - (xmax > xmin ? 0.3 : 1)), xmax + (xmax > xmin ? 0.3 : 1), Math.Max(0, lo - pad), Math.Min(100, hi + pad));
    }

    /// <summary>The final table (or the run's state before it) as text.</summary>
    internal static void Table(Plot plot, RunSeries run)
    {
        plot.Title("Result");
        plot.Layout.Frameless();
        plot.HideGrid();
        plot.Axes.SetLimits(0, 1, 0, 1);
        var lines = new List<string>();
        lines.Add($"{run.Epochs} epochs, {run.Steps} steps");
        if (run.Loss.Length > 0) lines.Add($"last loss {run.Loss[^1].Value:F4}");
        if (run.Knn.Length > 0) lines.Add($"kNN top-1 at epoch {run.Knn[^1].Epoch:F0}: {run.Knn[^1].Percent:F1} %");
        if (run.Eval is { } e)
        {
            string P(string k) => e.TryGetValue(k, out var v) && double.IsFinite(v) ? $"{100 * v,6:F1} %" : "     –  ";
            lines.Add("");
            lines.Add($"{"",-13}{"linear@1",10}{"linear@5",10}{"kNN@1",10}");
            lines.Add($"{"SimCLR",-13}{P("linear_top1"),10}{P("linear_top5"),10}{P("knn_top1"),10}");
            lines.Add($"{"random init",-13}{P("random_linear_top1"),10}{P("random_linear_top5"),10}{P("random_knn_top1"),10}");
            if (e.TryGetValue("linear_top1", out var a) && e.TryGetValue("random_linear_top1", out var r))
                lines.Add($"linear top-1 gain: {100 * (a - r):+0.0;-0.0} points");
        }
        else lines.Add("final evaluation: not run (yet)");
        var text = plot.Add.Text(string.Join("\n", lines), 0.04, 0.92);
        text.LabelFontName = Fonts.Monospace;
        text.LabelFontSize = 15;
        text.Alignment = Alignment.UpperLeft;
    }

    private static void SaveDashboard(string path, RunSeries run)
    {
        if (run.Loss.Length == 0 && run.Knn.Length == 0)
        {
            Remove(path);
            return;
        }
        var multiplot = new Multiplot();
        multiplot.AddPlots(4);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        var panels = multiplot.GetPlots();
        Draw(panels[0], run.Loss.Length > 0, p => Loss(p, run), "NT-Xent loss");
        Draw(panels[1], run.Lr.Length > 0, p => Lr(p, run), "Learning rate");
        Draw(panels[2], run.Knn.Length > 0, p => Knn(p, run), "kNN top-1 (no evaluation in this run)");
        Table(panels[3], run);
        using var image = multiplot.Render(2 * Width, 2 * Height);
        Write(path, image.GetImageBytes(ImageFormat.Png));
    }

    private static void Draw(Plot plot, bool hasPoints, Action<Plot> draw, string emptyTitle)
    {
        if (hasPoints) draw(plot);
        else
        {
            plot.Title(emptyTitle);
            plot.Layout.Frameless();
            plot.HideGrid();
        }
    }

    /// <summary>A dotted line at the last step of each epoch, numbered on the top axis (every k-th number once
    /// there are too many to read).</summary>
    private static void EpochEnds(Plot plot, RunSeries run)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        int every = Math.Max(1, (int)Math.Ceiling(run.EpochEnds.Length / 15.0));
        for (int i = 0; i < run.EpochEnds.Length; i++)
        {
            var line = plot.Add.VerticalLine(run.EpochEnds[i], 1, Colors.Gray.WithAlpha(0.6), LinePattern.Dotted);
            line.ExcludeFromLegend = true;
            if ((i + 1) % every == 0 || i == run.EpochEnds.Length - 1) ticks.AddMajor(run.EpochEnds[i], $"{i + 1}");
        }
        if (run.EpochEnds.Length == 0) return;
        plot.Axes.Top.TickGenerator = ticks;
        plot.XLabel("step (top axis: end of epoch n)");
    }

    /// <summary>The top axis (epoch numbers) spans what the bottom one does.</summary>
    private static void MatchTopAxis(Plot plot)
    {
        var limits = plot.Axes.GetLimits();
        plot.Axes.SetLimitsX(limits.Left, limits.Right, plot.Axes.Top);
    }

    /// <summary>Limits that show every point, with room; one point gets a window of its own.</summary>
    private static void Frame(Plot plot, double[] xs, double[] ys, bool includeZero = false)
    {
        double xmin = xs.Min(), xmax = xs.Max(), ymin = includeZero ? Math.Min(0, ys.Min()) : ys.Min(), ymax = ys.Max();
        double xpad = xmax > xmin ? 0.02 * (xmax - xmin) : 1;
        double ypad = ymax > ymin ? 0.08 * (ymax - ymin) : Math.Max(Math.Abs(ymax) * 0.1, 1e-3);
        plot.Axes.SetLimits(xmin - xpad, xmax + xpad, ymin - (includeZero && ymin == 0 ? 0 : ypad), ymax + ypad);
        MatchTopAxis(plot);
    }

    /// <summary>The EMA span: about a twenty-fifth of the run, between 5 and 500 steps.</summary>
    internal static int SmoothingSpan(int points) => Math.Clamp(points / 25, 5, 500);

    /// <summary>Exponential moving average with α = 2/(span+1), debiased (divided by 1 − (1−α)^t) so the start is
    /// not pulled toward zero.</summary>
    internal static double[] Smoothed(double[] ys, int span)
    {
        double alpha = 2.0 / (span + 1), ema = 0, weight = 0;
        var result = new double[ys.Length];
        for (int i = 0; i < ys.Length; i++)
        {
            ema = (1 - alpha) * ema + alpha * ys[i];
            weight = (1 - alpha) * weight + alpha;
            result[i] = ema / weight;
        }
        return result;
    }

    private static void Save(string path, Action<Plot>? draw, int width, int height)
    {
        if (draw is null)
        {
            Remove(path);
            return;
        }
        var plot = new Plot();
        draw(plot);
        Write(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    private static void Remove(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(path, $"cannot remove the stale plot ({e.Message})");
        }
    }

    /// <summary>Replaces the PNG atomically (Io/AtomicFile: a full disk or a kill never leaves a torn image).</summary>
    private static void Write(string path, byte[] png) => AtomicFile.Write(path, png);
}
