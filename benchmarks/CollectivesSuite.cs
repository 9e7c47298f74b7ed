// The collectives suite: what one data-parallel SimCLR step sends, timed on CPU ranks, plus the scaling model.
// Started by `mpirun -np 2 … collectives` it times Open MPI between processes; started alone it runs 2 ranks as
// threads of this process (shared-memory communicator) and says so. Every rank runs the same collectives in the
// step's order on buffers of the step's sizes, taken from the model's own parameter store and BN layers:
//   forward:  each BN layer's [Σx, Σx², n] all-reduce (doubles), the all-gather of z [2b, 128] and of the
//             row log-sum-exps [2b], the loss all-reduce; backward: each BN layer's [Σdy, Σdy·x̂, n]; then the one
//             all-reduce of the flat gradient buffer and the stop agreement (one int).
// Each row is a collective (or the whole step's set) timed with the same repetition count on every rank (rank 0's
// calibration, broadcast), each sample started by a barrier; rank 0 reports. The GB/s column is the bus bandwidth
// of NCCL's convention (all-reduce 2(n-1)/n · bytes, all-gather (n-1)/n · bytes, per time), held against the
// machine's STREAM-like copy bandwidth. Then the scaling model (ScalingModel.cs) for ResNet-18 and ResNet-50.
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Distributed;
using SimClr.Layers;
using SimClr.Training.Distributed;

namespace SimClr.Benchmarks;

public static class CollectivesSuite
{
    /// <summary>A step's collectives for one model and global batch.</summary>
    public sealed record StepTraffic(string Name, ResNetArch Arch, StemKind Stem, double Width, int GlobalBatch, int Ranks, int ProjectionDim,
        long GradientFloats, int[] BatchNormChannels)
    {
        public int PairsPerRank => GlobalBatch / Ranks;
        public long GradientBytes => 4 * GradientFloats;
        /// <summary>z of every rank: 2B rows of the projection.</summary>
        public long GatheredZBytes => 4L * 2 * GlobalBatch * ProjectionDim;
        public long GatheredLseBytes => 4L * 2 * GlobalBatch;
        /// <summary>Forward and backward, every BN layer: (2C + 1) doubles each way.</summary>
        public long BatchNormBytes => 2 * BatchNormChannels.Sum(c => 8L * (2 * c + 1));
        public int BatchNormCollectives => 2 * BatchNormChannels.Length;

        public static StepTraffic Of(string name, ResNetArch arch, StemKind stem, double width, int globalBatch, int ranks)
        {
            using var host = new CpuBackend<float>();
            using var store = new ParameterStore<float>(host);
            var encoder = new ResNet<float>(store, arch, stem, width);
            var head = new ProjectionHead<float>(store, encoder.FeatureDim, encoder.FeatureDim, 128, 2);
            var channels = encoder.SelfAndDescendants().Concat(head.SelfAndDescendants()).OfType<BatchNormBase<float>>().Select(b => b.Channels).ToArray();
            // The flat buffer the all-reduce sends, alignment gaps included (FlatLength is only known once laid out).
            long flat = store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter).Max(e => e.Offset + e.Elements);
            return new StepTraffic(name, arch, stem, width, globalBatch, ranks, 128, flat, channels);
        }
    }

    public static SuiteReport Run(BenchOptions options)
    {
        var environment = LaunchEnvironment.Detect();
        if (environment.Size > 1)
        {
            using var mpi = MpiCommunicator.Initialize(TimeSpan.FromMinutes(10));
            return RunOn(mpi, options, $"Open MPI between {mpi.Size} processes ({mpi.LibraryVersion}, launched by {environment.Launcher})");
        }
        var reports = SharedMemoryGroup.Run(2, TimeSpan.FromMinutes(10),
            comm => RunOn(comm, options, "2 ranks as threads of one process (shared-memory communicator): run under `mpirun -np 2` for Open MPI"));
        return reports[0];
    }

    private static SuiteReport RunOn(ICommunicator comm, BenchOptions options, string transport)
    {
        bool smoke = options.Sizes == SizeSet.Smoke;
        var report = new SuiteReport
        {
            Suite = "collectives", Sizes = options.Sizes.ToString().ToLowerInvariant(),
            Device = $"CPU ranks: {transport}", Clock = "Stopwatch (each sample starts at a barrier)",
            AutosavePath = comm.Rank == 0 ? options.JsonPath : null,
        };
        Roofline? roof = comm.Rank == 0 ? CpuRoofline.Measure(options.Sizes) : null;
        comm.Barrier();
        report.Roofline = roof ?? new Roofline(1, 1, "", "");
        var workloads = smoke
            ? new[] { StepTraffic.Of("resnet18-cifar-w0.125", ResNetArch.ResNet18, StemKind.Cifar, 0.125, 64, comm.Size) }
            : new[]
            {
                StepTraffic.Of("resnet18-cifar", ResNetArch.ResNet18, StemKind.Cifar, 1.0, 512, comm.Size),
                StepTraffic.Of("resnet50-imagenet", ResNetArch.ResNet50, StemKind.ImageNet, 1.0, 512, comm.Size),
            };
        foreach (var t in workloads) Time(comm, report, t, options);
        if (comm.Rank == 0)
        {
            report.Notes.Add("GB/s: bus bandwidth (NCCL's convention: all-reduce 2(n-1)/n × bytes, all-gather (n-1)/n × bytes, per second); % roofline against the copy bandwidth");
            foreach (var line in ScalingModel.Describe()) report.Notes.Add(line);
        }
        return report;
    }

    private static void Time(ICommunicator comm, SuiteReport report, StepTraffic t, BenchOptions options)
    {
        int n = comm.Size, b = t.PairsPerRank;
        using var gradients = new HostStorage<float>(t.GradientFloats);
        using var z = new HostStorage<float>(2L * t.GlobalBatch * t.ProjectionDim);
        using var lse = new HostStorage<float>(2L * t.GlobalBatch);
        using var loss = new HostStorage<float>(1);
        using var flag = new HostStorage<int>(1);
        var sums = t.BatchNormChannels.Select(c => new HostStorage<double>(2 * c + 1)).ToArray();
        try
        {
            var zAll = z.AsTensor();
            var zMine = zAll.Slice((long)comm.Rank * 2 * b * t.ProjectionDim, new Shape(2 * b * t.ProjectionDim));
            var lseAll = lse.AsTensor();
            var lseMine = lseAll.Slice((long)comm.Rank * 2 * b, new Shape(2 * b));
            void BatchNorms() { foreach (var s in sums) comm.AllReduceSum(s.AsTensor()); }
            void Gradients() => comm.AllReduceSum(gradients.AsTensor());
            void GatherZ() => comm.AllGather(zAll, zMine);
            void GatherLse() => comm.AllGather(lseAll, lseMine);
            void Step()
            {
                BatchNorms();
                GatherZ();
                GatherLse();
                comm.AllReduceSum(loss.AsTensor());
                BatchNorms();
                Gradients();
                comm.AllReduceSum(flag.AsTensor());
            }
            double ring = 2.0 * (n - 1) / n, gather = (double)(n - 1) / n;
            var rows = new (string Key, string Shape, Action Body, double BusBytes)[]
            {
                ($"collectives.{t.Name}.gradients", $"all-reduce {t.GradientFloats:N0} floats ({Mb(t.GradientBytes)})", Gradients, ring * t.GradientBytes),
                ($"collectives.{t.Name}.z", $"all-gather z [{2 * t.GlobalBatch}, {t.ProjectionDim}] ({Mb(t.GatheredZBytes)})", GatherZ, gather * t.GatheredZBytes),
                ($"collectives.{t.Name}.lse", $"all-gather row lse [{2 * t.GlobalBatch}]", GatherLse, gather * t.GatheredLseBytes),
                ($"collectives.{t.Name}.syncbn", $"{t.BatchNormCollectives} all-reduces of BN sums ({t.BatchNormBytes / 1024.0:F0} KiB)", () => { BatchNorms(); BatchNorms(); }, ring * t.BatchNormBytes),
                ($"collectives.{t.Name}.step", $"all of one step, B={t.GlobalBatch} over {n} ranks", Step,
                    ring * (t.GradientBytes + t.BatchNormBytes + 8) + gather * (t.GatheredZBytes + t.GatheredLseBytes)),
            };
            foreach (var (key, shape, body, busBytes) in rows)
            {
                if (!options.Selects(key)) continue;
                var timing = Measure(comm, body, MeasureSettings.For(options));
                if (comm.Rank != 0) continue;
                var row = BenchResult.From(key, "collectives", shape, timing, new Work(0, busBytes), report.Roofline!, 0, "");
                report.Add(row);
                Console.Error.WriteLine($"  {key}: {row.MedianMs:G4} ms");
            }
        }
        finally
        {
            foreach (var s in sums) s.Dispose();
        }
    }

    /// <summary>Warm-up, one repetition count for every rank (rank 0's calibration, broadcast), then samples that
    /// each start at a barrier, so every rank runs exactly the same collectives.</summary>
    private static Timing Measure(ICommunicator comm, Action body, MeasureSettings settings)
    {
        double single = double.MaxValue;
        for (int w = 0; w < Math.Max(1, settings.WarmupRuns); w++)
        {
            comm.Barrier();
            long start = Stopwatch.GetTimestamp();
            body();
            single = Math.Min(single, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        using var count = new HostStorage<int>(1);
        count.AsTensor().Span[0] = single >= settings.MinSampleSeconds ? 1 : (int)Math.Min(100_000, Math.Ceiling(settings.MinSampleSeconds / Math.Max(single, 1e-9)));
        comm.Broadcast(count.AsTensor(), root: 0);
        int repetitions = count.AsTensor().Span[0];
        var samples = new double[settings.Samples];
        for (int s = 0; s < samples.Length; s++)
        {
            comm.Barrier();
            long start = Stopwatch.GetTimestamp();
            for (int r = 0; r < repetitions; r++) body();
            samples[s] = Stopwatch.GetElapsedTime(start).TotalSeconds / repetitions;
        }
        return Timing.FromSamples(samples, repetitions);
    }

    private static string Mb(long bytes) => $"{bytes / 1048576.0:F1} MiB";
}
