// metrics.csv, the spreadsheet view of metrics.jsonl: one row per record, columns kind, step, epoch, time and
// then one per value name in the order the names first appear (loss, lr, images_per_second, knn_top1, ...);
// a record leaves the columns it does not have empty. A record that brings a new name rewrites the file with
// the wider header (records are few and kept in memory), so the header always names every column.
// Numbers are invariant-culture round-trip decimals; NaN and infinities are written as NaN, Infinity, -Infinity.
// Rewrites are atomic and a failed append is cut back (the rules of Io/AtomicFile and MetricsLog).
using System.Globalization;
using System.Text;
using SimClr.Training.Io;

namespace SimClr.Training.Runs;

public sealed class MetricsCsv(string path)
{
    private static readonly string[] Fixed = ["kind", "step", "epoch", "time"];
    private readonly List<string> _names = [];

    public string Path { get; } = path;

    public IReadOnlyList<string> Columns => [.. Fixed, .. _names];

    /// <summary>Writes the file anew for <paramref name="records"/>.</summary>
    public void Rewrite(IReadOnlyList<MetricRecord> records)
    {
        _names.Clear();
        foreach (var r in records) AddNames(r);
        var text = new StringBuilder();
        text.Append(string.Join(",", Columns)).Append('\n');
        foreach (var r in records) text.Append(Row(r)).Append('\n');
        AtomicFile.WriteText(Path, text.ToString());
    }

    /// <summary>Adds <paramref name="r"/>, the newest of <paramref name="all"/>: one appended row, or the whole file
    /// again when it brings a column.</summary>
    public void Append(MetricRecord r, IReadOnlyList<MetricRecord> all)
    {
        if (AddNames(r)) Rewrite(all);
        else AtomicFile.Append(Path, Encoding.UTF8.GetBytes(Row(r) + "\n"));
    }

    private bool AddNames(MetricRecord r)
    {
        bool added = false;
        foreach (var name in r.Values.Keys)
            if (!_names.Contains(name))
            {
                _names.Add(name);
                added = true;
            }
        return added;
    }

    private string Row(MetricRecord r)
    {
        var cells = new List<string>
        {
            r.Kind,
            r.Step.ToString(CultureInfo.InvariantCulture),
            r.Epoch.ToString(CultureInfo.InvariantCulture),
            r.Time is { } t ? t.ToString("R", CultureInfo.InvariantCulture) : "",
        };
        foreach (var name in _names) cells.Add(r.Values.TryGetValue(name, out var v) ? v.ToString("R", CultureInfo.InvariantCulture) : "");
        return string.Join(",", cells);
    }
}
