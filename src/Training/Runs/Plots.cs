// PNG plots of a run with ScottPlot 5: loss and learning rate per step, kNN accuracy per epoch.
// Plots are redrawn from metrics.jsonl's records after each epoch, so a crashed run still has them; each PNG
// replaces the last atomically (Io/AtomicFile), so a kill or a full disk never leaves a torn image.
using SimClr.Training.Io;

namespace SimClr.Training.Runs;

public static class Plots
{
    public static void Write(string root, IReadOnlyList<MetricRecord> records)
    {
        var steps = records.Where(r => r.Kind == "step").ToList();
        Line(Path.Combine(root, "loss.png"), "NT-Xent loss", "step", "loss",
            steps.Where(r => r.Values.ContainsKey("loss")).Select(r => ((double)r.Step, r.Values["loss"])));
        Line(Path.Combine(root, "lr.png"), "Learning rate", "step", "lr",
            steps.Where(r => r.Values.ContainsKey("lr")).Select(r => ((double)r.Step, r.Values["lr"])));
        Line(Path.Combine(root, "knn.png"), "kNN top-1 (k-NN monitor on h)", "epoch", "top-1 accuracy",
            records.Where(r => r.Kind == "knn" && r.Values.ContainsKey("knn_top1")).Select(r => ((double)r.Epoch, r.Values["knn_top1"])));
    }

    private static void Line(string path, string title, string xLabel, string yLabel, IEnumerable<(double X, double Y)> points)
    {
        var pts = points.Where(p => double.IsFinite(p.Y)).ToArray();
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (pts.Length > 0)
        {
            var line = plot.Add.Scatter(pts.Select(p => p.X).ToArray(), pts.Select(p => p.Y).ToArray());
            line.MarkerSize = pts.Length > 50 ? 0 : 5;
        }
        AtomicFile.Write(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
    }
}
