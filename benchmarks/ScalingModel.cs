// The scaling model of data-parallel SimCLR, computed from this project's own step: the bytes come from the model's
// parameter store and BN layers (CollectivesSuite.StepTraffic), the compute from the step's flop count
// (Models.TrainingFlops). Fixed global batch B (the paper's 4096), n GPUs with B/n pairs each, nothing overlapped
// (the step runs one gradient all-reduce after the backward):
//   all-reduce of S bytes   2(n-1)/n · S / BW + 2·log2(n)·α        (NCCL: ring for bandwidth, tree for latency)
//   all-gather of S bytes   (n-1)/n · S / BW + log2(n)·α
//   step communication      gradients + z [2B, 128] + row lse [2B] + 2·L BN sums + loss + stop flag
//   efficiency              t_compute / (t_compute + t_communication), t_compute = flops(B/n pairs) / R
// Assumed (no GPU in this session; replace R by the step suite's measured rate): BW = 200 GB/s bus bandwidth and
// α = 5 µs inside an 8-GPU NVLink node, BW = 22 GB/s (InfiniBand HDR, 200 Gb/s per GPU) and α = 10 µs across
// nodes, R = 12 TFLOP/s sustained fp32 per GPU (about 60 % of an A100's 19.5).
using System.Globalization;
using SimClr.Kernels.Cpu;
using SimClr.Layers;

namespace SimClr.Benchmarks;

public static class ScalingModel
{
    public const int GlobalBatch = 4096;
    public const double SustainedFlops = 12e12;

    public sealed record Link(string Name, double BusBytesPerSecond, double LatencySeconds);

    public static readonly Link NvLink = new("NVLink (200 GB/s, 5 µs)", 200e9, 5e-6);
    public static readonly Link InfiniBand = new("InfiniBand HDR (22 GB/s, 10 µs)", 22e9, 10e-6);

    public sealed record Estimate(int Gpus, Link Link, double ComputeSeconds, double GradientSeconds, double GatherSeconds, double BatchNormSeconds,
        double SmallSeconds)
    {
        public double CommunicationSeconds => GradientSeconds + GatherSeconds + BatchNormSeconds + SmallSeconds;
        public double Efficiency => ComputeSeconds / (ComputeSeconds + CommunicationSeconds);
    }

    public static double AllReduce(double bytes, int n, Link l) => n == 1 ? 0 : 2.0 * (n - 1) / n * bytes / l.BusBytesPerSecond + 2 * Math.Log2(n) * l.LatencySeconds;
    public static double AllGather(double bytes, int n, Link l) => n == 1 ? 0 : (double)(n - 1) / n * bytes / l.BusBytesPerSecond + Math.Log2(n) * l.LatencySeconds;

    public static Estimate Model(CollectivesSuite.StepTraffic t, double flopsPerPair, int n, Link l) => new(n, l,
        flopsPerPair * (t.GlobalBatch / (double)n) / SustainedFlops,
        AllReduce(t.GradientBytes, n, l),
        AllGather(t.GatheredZBytes, n, l) + AllGather(t.GatheredLseBytes, n, l),
        t.BatchNormChannels.Sum(c => 2 * AllReduce(8.0 * (2 * c + 1), n, l)),
        2 * AllReduce(4, n, l));

    /// <summary>Training flops of one pair (two views) from the model's own structure.</summary>
    public static double FlopsPerPair(ResNetArch arch, StemKind stem, int side)
    {
        using var host = new CpuBackend<float>();
        using var model = new SimClrModel<float>(host, new SimClrModelConfig { Arch = arch, Stem = stem, ImageHeight = side, ImageWidth = side, BatchSize = 1 });
        return Models.TrainingFlops(model);
    }

    /// <summary>The model as note lines (markdown) for the collectives report and the README.</summary>
    public static IEnumerable<string> Describe()
    {
        var cases = new[]
        {
            (Traffic: CollectivesSuite.StepTraffic.Of("resnet18-cifar", ResNetArch.ResNet18, StemKind.Cifar, 1.0, GlobalBatch, 1), Side: 32),
            (Traffic: CollectivesSuite.StepTraffic.Of("resnet50-imagenet", ResNetArch.ResNet50, StemKind.ImageNet, 1.0, GlobalBatch, 1), Side: 224),
        };
        yield return $"scaling model (ScalingModel.cs): global batch {GlobalBatch}, B/n pairs per GPU, no overlap, R = {SustainedFlops / 1e12:F0} TFLOP/s fp32 per GPU (assumed), " +
            $"{NvLink.Name} for 8 GPUs, {InfiniBand.Name} for 64 and 512";
        foreach (var (t, side) in cases)
        {
            double perPair = FlopsPerPair(t.Arch, t.Stem, side);
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{t.Name}: all-reduced per step {t.GradientBytes / 1048576.0:F1} MiB of gradients ({t.GradientFloats:N0} floats, head included) + {t.BatchNormBytes / 1024.0:F0} KiB of BN sums in {t.BatchNormCollectives} all-reduces; " +
                $"all-gathered {t.GatheredZBytes / 1048576.0:F1} MiB of z and {t.GatheredLseBytes / 1024.0:F0} KiB of row lse (a reduce-scatter of dz would move {t.GatheredZBytes / 1048576.0:F1} MiB more); {perPair / 1e9:F1} GFLOP per pair");
            foreach (var (n, link) in new[] { (8, NvLink), (64, InfiniBand), (512, InfiniBand) })
            {
                var e = Model(t, perPair, n, link);
                yield return string.Create(CultureInfo.InvariantCulture,
                    $"{t.Name} on {n} GPUs ({GlobalBatch / n} pairs each, {link.Name}): compute {e.ComputeSeconds * 1e3:F1} ms, gradients {e.GradientSeconds * 1e3:F2} ms, " +
                    $"z + lse {e.GatherSeconds * 1e3:F2} ms, SyncBN {e.BatchNormSeconds * 1e3:F2} ms, efficiency {e.Efficiency:P0}");
            }
        }
    }
}
