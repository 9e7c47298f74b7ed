// What a run leaves for people and tools: TensorBoard event files (read back with a reader written here from
// the TFRecord and protobuf specs, CRCs recomputed bit by bit), metrics.csv, the plots (none without points,
// sensible axes for one), the summary's checkpoints, one epoch numbering, and the console's short lines.
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SimClr.Training.Runs;

namespace SimClr.Tests.Training;

/// <summary>A TFRecord / tensorflow.Event reader from the formats' definitions, independent of the writer.</summary>
internal static class EventFileReader
{
    public sealed record Event(double WallTime, long Step, string? FileVersion, List<(string Tag, float Value)> Scalars);

    /// <summary>CRC-32C bit by bit (reflected Castagnoli polynomial 0x82F63B78).</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    public static uint Masked(ReadOnlySpan<byte> data)
    {
        uint c = Crc32C(data);
        return ((c >> 15) | (c << 17)) + 0xa282ead8u;
    }

    public static List<Event> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int at = 0;
        while (at < bytes.Length)
        {
            Assert.True(bytes.Length - at >= 16, $"truncated record at byte {at}");
            var lengthBytes = bytes.AsSpan(at, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            Assert.Equal(Masked(lengthBytes), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8, 4)));
            var data = bytes.AsSpan(at + 12, (int)length);
            Assert.Equal(Masked(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length, 4)));
            events.Add(ParseEvent(data));
            at += 16 + (int)length;
        }
        return events;
    }

    private static ulong Varint(ReadOnlySpan<byte> s, ref int i)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = s[i++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
    }

    private static Event ParseEvent(ReadOnlySpan<byte> s)
    {
        double wall = 0;
        long step = 0;
        string? version = null;
        var scalars = new List<(string, float)>();
        for (int i = 0; i < s.Length;)
        {
            ulong key = Varint(s, ref i);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (field, wire)
            {
                case (1, 1): wall = BinaryPrimitives.ReadDoubleLittleEndian(s[i..]); i += 8; break;
                case (2, 0): step = (long)Varint(s, ref i); break;
                case (3, 2): { int n = (int)Varint(s, ref i); version = Encoding.UTF8.GetString(s.Slice(i, n)); i += n; break; }
                case (5, 2): { int n = (int)Varint(s, ref i); ParseSummary(s.Slice(i, n), scalars); i += n; break; }
                default: Assert.Fail($"unexpected Event field {field} (wire type {wire})"); break;
            }
        }
        return new Event(wall, step, version, scalars);
    }

    private static void ParseSummary(ReadOnlySpan<byte> s, List<(string, float)> scalars)
    {
        for (int i = 0; i < s.Length;)
        {
            ulong key = Varint(s, ref i);
            Assert.Equal(1UL << 3 | 2, key);
            int n = (int)Varint(s, ref i);
            var value = s.Slice(i, n);
            i += n;
            string? tag = null;
            float? simple = null;
            for (int j = 0; j < value.Length;)
            {
                ulong k = Varint(value, ref j);
                if (k == (1 << 3 | 2)) { int m = (int)Varint(value, ref j); tag = Encoding.UTF8.GetString(value.Slice(j, m)); j += m; }
                else if (k == (2 << 3 | 5)) { simple = BinaryPrimitives.ReadSingleLittleEndian(value[j..]); j += 4; }
                else Assert.Fail($"unexpected Summary.Value key {k}");
            }
            scalars.Add((tag!, simple!.Value));
        }
    }
}

public class RunOutputTests(StraightRun straightRun)
{
    private static MetricRecord Record(string kind, long step, int epoch, params (string Name, double Value)[] values) =>
        new(kind, step, epoch, values.ToDictionary(v => v.Name, v => v.Value));

    [Fact]
    public void Crc32cMatchesTheKnownVectors()
    {
        // RFC 3720 appendix B.4 and the usual check value.
        var vectors = new (byte[] Data, uint Crc)[]
        {
            ("123456789"u8.ToArray(), 0xE3069283),
            (new byte[32], 0x8A9136AA),
            (Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43),
            (Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 0x46DD794E),
        };
        foreach (var (data, crc) in vectors)
        {
            Assert.Equal(crc, TensorBoardLog.Crc32C(data));
            Assert.Equal(crc, EventFileReader.Crc32C(data));
        }
    }

    [Fact]
    public void TensorBoardEventsRoundTripAndFollowATruncation()
    {
        string dir = Directory.CreateTempSubdirectory("simclr-tb").FullName;
        try
        {
            var log = MetricsLog.Start(Path.Combine(dir, "metrics.jsonl"));
            log.Append(Record("knn", 0, 0, ("knn_top1", 0.25), ("knn_top5", 0.75)));
            for (int s = 1; s <= 6; s++) log.Append(Record("step", s, (s + 2) / 3, ("loss", 5.0 - 0.1 * s), ("lr", 0.001 * s)));
            log.Append(Record("epoch", 3, 1, ("loss", 4.8), ("images_per_second", 123.5)));
            log.Append(Record("epoch", 6, 2, ("loss", 4.5), ("images_per_second", 130)));

            var events = EventFileReader.Read(log.EventsPath);
            Assert.StartsWith(TensorBoardLog.FilePrefix, Path.GetFileName(log.EventsPath));
            Assert.Equal(TensorBoardLog.FileVersion, events[0].FileVersion);
            Assert.Equal(log.Records.Count + 1, events.Count);
            for (int i = 0; i < log.Records.Count; i++)
            {
                var r = log.Records[i];
                var e = events[i + 1];
                Assert.Equal(r.Step, e.Step);
                Assert.Equal(r.Time!.Value, e.WallTime);
                Assert.Equal(r.Values.Select(v => (TensorBoardLog.Tag(r, v.Key), (float)v.Value)), e.Scalars);
            }
            Assert.Contains(("train/loss", 4.9f), events[2].Scalars);
            Assert.Contains(("knn/knn_top1", 0.25f), events[1].Scalars);

            // A resumed run from step 3 replays steps 4..6: the file keeps only what metrics.jsonl keeps.
            var resumed = MetricsLog.Resume(Path.Combine(dir, "metrics.jsonl"), 3);
            Assert.Equal(log.EventsPath, resumed.EventsPath);
            var kept = EventFileReader.Read(resumed.EventsPath).Skip(1).ToList();
            Assert.Equal([0L, 1, 2, 3, 3], kept.Select(e => e.Step));
            Assert.Equal(resumed.Records.Select(r => r.Time!.Value), kept.Select(e => e.WallTime));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MetricsCsvNamesEveryColumnAndHoldsEveryRecord()
    {
        string dir = Directory.CreateTempSubdirectory("simclr-csv").FullName;
        try
        {
            var log = MetricsLog.Start(Path.Combine(dir, "metrics.jsonl"));
            log.Append(Record("step", 1, 1, ("loss", 4.25), ("lr", 0.0000944)));
            log.Append(Record("step", 2, 1, ("loss", 4.125), ("lr", 0.1)));
            log.Append(Record("knn", 2, 1, ("knn_top1", 0.5)));
            var lines = File.ReadAllLines(log.CsvPath);
            Assert.Equal("kind,step,epoch,time,loss,lr,knn_top1", lines[0]);
            Assert.Equal(4, lines.Length);
            var cells = lines[1].Split(',');
            Assert.Equal(["step", "1", "1"], cells[..3]);
            Assert.Equal(4.25, double.Parse(cells[4], CultureInfo.InvariantCulture));
            Assert.Equal(0.0000944, double.Parse(cells[5], CultureInfo.InvariantCulture));
            Assert.Equal("", cells[6]);
            Assert.Equal(0.5, double.Parse(lines[3].Split(',')[6], CultureInfo.InvariantCulture));
            Assert.Equal(log.Records[0].Time!.Value, double.Parse(cells[3], CultureInfo.InvariantCulture));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void PlotsAreWrittenOnlyWithPointsAndOnePointGetsAWindow()
    {
        string dir = Directory.CreateTempSubdirectory("simclr-plots").FullName;
        try
        {
            var steps = Enumerable.Range(1, 30).Select(s => Record("step", s, (s + 9) / 10, ("loss", 5 - 0.05 * s), ("lr", 0.01 * s))).ToList();
            Plots.Write(dir, steps);
            Assert.True(File.Exists(Path.Combine(dir, "loss.png")));
            Assert.True(File.Exists(Path.Combine(dir, "lr.png")));
            Assert.True(File.Exists(Path.Combine(dir, "dashboard.png")));
            Assert.False(File.Exists(Path.Combine(dir, "knn.png")));

            var oneKnn = steps.Append(Record("knn", 30, 3, ("knn_top1", 0.42))).ToList();
            Plots.Write(dir, oneKnn);
            Assert.True(File.Exists(Path.Combine(dir, "knn.png")));
            var plot = new ScottPlot.Plot();
            Plots.Knn(plot, Plots.RunSeries.From(oneKnn));
            var limits = plot.Axes.GetLimits();
            Assert.True(limits.Left <= 2 && limits.Right >= 4, $"x range {limits.Left}..{limits.Right} around epoch 3");
            Assert.True(limits.Top - limits.Bottom >= 10 && limits.Bottom <= 42 && limits.Top >= 42, $"y range {limits.Bottom}..{limits.Top} around 42 %");

            // Records truncated away (a resumed run) take their plot with them.
            Plots.Write(dir, steps);
            Assert.False(File.Exists(Path.Combine(dir, "knn.png")));
            Plots.Write(dir, []);
            Assert.Empty(Directory.EnumerateFiles(dir, "*.png"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TheSmoothedLossFollowsTheRawLossWithoutABiasAtTheStart()
    {
        double[] constant = Enumerable.Repeat(4.0, 20).ToArray();
        Assert.All(Plots.Smoothed(constant, 5), v => Assert.Equal(4.0, v, 12));
        double[] step = [.. Enumerable.Repeat(4.0, 10), .. Enumerable.Repeat(2.0, 40)];
        var smooth = Plots.Smoothed(step, 5);
        Assert.Equal(4.0, smooth[9], 12);
        Assert.InRange(smooth[11], 2.0, 4.0);
        Assert.Equal(2.0, smooth[^1], 3);
    }

    [Theory]
    [InlineData(9.44e-6, "0.00000944")]
    [InlineData(4.8, "4.80")]
    [InlineData(0.0421, "0.0421")]
    [InlineData(0.25, "0.250")]
    [InlineData(123.4, "123")]
    [InlineData(0, "0")]
    public void LearningRatesArePlainDecimals(double lr, string shown) => Assert.Equal(shown, ProgressView.Plain(lr));

    [Fact]
    public void PlainProgressLinesLabelElapsedAndLeft()
    {
        var output = new StringWriter();
        ProgressView.Run(SimClr.Training.Config.ProgressMode.Plain, output, "pretrain", 4, 0, 2, sink =>
        {
            for (int s = 1; s <= 3; s++) sink.Update(s, (s - 1) / 2, 50, 4.5 - 0.25 * s, 9.44e-6);
            using (var phase = sink.Begin("features (SimCLR)", 100, "images"))
                phase.Report(40);
            return 0;
        }, TimeSpan.Zero);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("pretrain: step 3/4 | epoch 2/2 | 50 img/s | loss 3.7500 | lr 0.00000944 | elapsed 0:00 | left ", lines[2]);
        // The features row stopped at 40 of 100: its last line says so instead of pretending it finished.
        Assert.Contains(lines, l => l.StartsWith("features (SimCLR): 40/100 images", StringComparison.Ordinal) && l.EndsWith("| stopped", StringComparison.Ordinal));
        // The pretraining row ended at step 3 of 4 and says where.
        Assert.StartsWith("pretrain: step 3/4", lines[^1]);
        Assert.EndsWith("| stopped", lines[^1]);
    }

    [Fact]
    public void EtaIsTheSmoothedRateTimesWhatIsLeft()
    {
        var eta = new EtaEstimator(0);
        Assert.Null(eta.SecondsLeft(0, 100));
        eta.Observe(10, 1); // the first step carries start-up: 10 s
        Assert.Equal(990, eta.SecondsLeft(10, 100)!.Value, 6);
        for (int s = 2; s <= 50; s++) eta.Observe(10 + (s - 1) * 0.5, s); // then 0.5 s a step
        Assert.Equal(25, eta.SecondsLeft(10 + 49 * 0.5, 100)!.Value, 6);
        // One pause of 60 s (a kNN monitor between steps) is left out of the rate.
        double t = 10 + 49 * 0.5 + 60;
        eta.Observe(t, 51);
        Assert.Equal(49 * 0.5, eta.SecondsLeft(t, 100)!.Value, 6);
        // Time passing without a report counts down.
        Assert.Equal(49 * 0.5 - 5, eta.SecondsLeft(t + 5, 100)!.Value, 6);
        // Two slow intervals in a row are a slowdown: the rate follows (2 s a step now).
        eta.Observe(t += 2, 52);
        eta.Observe(t += 2, 53);
        for (int s = 54; s <= 80; s++) eta.Observe(t += 2, s);
        Assert.InRange(eta.SecondsLeft(t, 100)!.Value, 20 * 1.8, 20 * 2.0);
    }

    [Fact]
    public void ReportingTheStartAgainRestartsTheFirstInterval()
    {
        var eta = new EtaEstimator(0);
        eta.Observe(30, 0); // 30 s of other work (a kNN baseline) before the first step
        eta.Observe(31, 1);
        Assert.Equal(99, eta.SecondsLeft(31, 100)!.Value, 6);
    }

    [Fact]
    public void ALongRunGetsOneEstimateLineWithAWayToShortenIt()
    {
        var config = new SimClr.Training.Config.RunConfig { Dataset = SimClr.Training.Data.DatasetKind.FashionMnist, Epochs = 100, BatchSize = 256 };
        var estimate = new SimClr.Training.Pretraining.RunEstimate(config, 23_400, 60_000, 10_000, "cpu-float32");
        // A first step of 80 s is slow enough to estimate from at once (waiting for three more would take minutes).
        string? line = estimate.AfterStep(1, 80);
        Assert.NotNull(line);
        Assert.StartsWith("estimate: about ", line);
        Assert.Contains("80.0 s/step × 23399 steps", line);
        Assert.Contains("to shorten: --preset fashion-mnist-cpu", line);
        Assert.True(line.Length <= 200, line);
        Assert.Null(estimate.AfterStep(2, 160));

        // Fast first steps: the estimate waits for three more, then uses them (the first held the start-up).
        var later = new SimClr.Training.Pretraining.RunEstimate(config, 23_400, 60_000, 10_000, "cpu-float32");
        Assert.Null(later.AfterStep(1, 5));
        Assert.Null(later.AfterStep(2, 6));
        Assert.Null(later.AfterStep(3, 7));
        Assert.Contains("1.00 s/step × 23396 steps", later.AfterStep(4, 8));

        var quick = new SimClr.Training.Pretraining.RunEstimate(SimClr.Training.Config.RunConfig.ShapesDefaults, 372, 2000, 500, "cpu-float32");
        for (int s = 1; s <= 10; s++) Assert.Null(quick.AfterStep(s, 0.4 * s));
    }

    private static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    [Fact]
    public void EvalNoneLeavesNoKnnPlotAndTheLogsAgree()
    {
        string dir = straightRun.Dir;
        Assert.False(File.Exists(Path.Combine(dir, "knn.png")));
        foreach (var png in new[] { "loss.png", "lr.png", "dashboard.png" }) Assert.True(File.Exists(Path.Combine(dir, png)), png);
        var records = TinyRun.Records(dir);
        Assert.DoesNotContain(records, o => (string)o["kind"]! == "knn");
        Assert.Equal(records.Count + 1, File.ReadAllLines(Path.Combine(dir, "metrics.csv")).Length);
        string events = Directory.EnumerateFiles(dir, TensorBoardLog.FilePrefix + "*").Single();
        Assert.Equal(records.Count + 1, EventFileReader.Read(events).Count);

        // One epoch numbering: steps 1..6 belong to epoch 1, 7..12 to epoch 2; epoch records count completed epochs.
        var steps = records.Where(o => (string)o["kind"]! == "step").ToList();
        Assert.Equal(Enumerable.Range(1, 12).Select(s => (s + 5) / 6), steps.Select(o => (int)o["epoch"]!));
        Assert.Equal([1, 2], records.Where(o => (string)o["kind"]! == "epoch").Select(o => (int)o["epoch"]!));

        var summary = Json(Path.Combine(dir, "summary.json"));
        Assert.Equal(TinyRun.Checkpoint(dir, 12), (string)summary["last_checkpoint"]!);
        Assert.Null(summary["best_checkpoint"]);
    }

    [Fact]
    public void TheSummaryNamesTheLastAndTheBestCheckpointAndEpochZeroIsTheRandomInitBaseline()
    {
        string dir = TinyRun.NewDir("best");
        try
        {
            string[] args = [.. TinyRun.Args(dir, 3).Select(a => a switch { "none" => "full", "quiet" => "plain", _ => a }), "--knn-every", "1", "--linear-epochs", "2"];
            var r = Cli.Run(args);
            Assert.True(r.Code == 0, r.Err);
            var summary = Json(Path.Combine(dir, "summary.json"));
            var knn = TinyRun.Records(dir).Where(o => (string)o["kind"]! == "knn").ToList();
            Assert.Equal([0, 1, 2, 3], knn.Select(o => (int)o["epoch"]!));
            Assert.Equal(0, (long)knn[0]["step"]!);
            // Epoch 0 is the encoder before any step: the same random-init encoder the final evaluation compares with.
            Assert.Equal((double)summary["random_knn_top1"]!, (double)knn[0]["knn_top1"]!);
            double best = knn.Skip(1).Max(o => (double)o["knn_top1"]!);
            Assert.Equal(best, (double)summary["best_knn_top1"]!);
            Assert.Equal(Path.Combine(dir, "checkpoints", "best.safetensors"), (string)summary["best_checkpoint"]!);
            Assert.Equal(TinyRun.Checkpoint(dir, 18), (string)summary["last_checkpoint"]!);
            var (_, info) = SimClr.Training.Checkpoints.Checkpoint.Read((string)summary["best_checkpoint"]!);
            Assert.Equal(best, info.BestMetric);
            Assert.True(File.Exists(Path.Combine(dir, "knn.png")));

            // The console: short lines only, and at most one of them about CUDA.
            var lines = r.Out.Split('\n');
            Assert.All(lines, l => Assert.True(l.TrimEnd().Length <= 200, $"{l.Length} chars: {l}"));
            Assert.True(lines.Count(l => l.Contains("CUDA", StringComparison.OrdinalIgnoreCase)) <= 1, r.Out);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void APresetIsTheStartAndEveryOptionGivenStillWins()
    {
        string dir = TinyRun.NewDir("preset");
        try
        {
            var r = Cli.Run("pretrain", "--preset", "shapes-cpu", "--shapes-count", "40", "--image-size", "16", "--batch-size", "8", "--epochs", "1",
                "--eval", "none", "--progress", "quiet", "--out", dir);
            Assert.True(r.Code == 0, r.Err);
            var config = Json(Path.Combine(dir, "config.json"));
            Assert.Equal(0.125, (double)config["width"]!);
            Assert.Equal(0.2, (double)config["temperature"]!);
            Assert.Equal(8, (int)config["batch_size"]!);
            Assert.Equal(1, (int)config["epochs"]!);
        }
        finally { Directory.Delete(dir, true); }
        var fashion = SimClr.Training.Config.RunConfig.FromPreset(SimClr.Training.Config.Preset.FashionMnistCpu);
        Assert.Equal((SimClr.Training.Data.DatasetKind.FashionMnist, 2000, 1000, 64, 5), (fashion.Dataset, fashion.TrainSubset, fashion.TestSubset, fashion.BatchSize, fashion.Epochs));
    }
}
