// The `profile` command: where a CPU training step's time goes, op by op. A pass-through backend times every
// call into the CPU backend with a Stopwatch (CPU ops are synchronous, so the time of a call is the op's) and
// groups it by op kind and, for convolutions, by pass and shape; the same step as the cpu suite's
// step.<model>.b<B>.train row (forward, backward, LARS; views made once). Used for benchmarks/RESULTS.md's
// comparison with PyTorch's profiler (pytorch/profile_step.py).
//   SimClr.Benchmarks profile [--width W] [--batch B] [--steps N] [--json PATH]   (default: ResNet-18 CIFAR, w = 1, B = 32, 5 steps)
using System.Diagnostics;
using System.Text.Json;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Layers;

namespace SimClr.Benchmarks;

/// <summary>Forwards every op to <paramref name="inner"/> and adds its wall time to a per-label total.</summary>
public sealed class TimingBackend(IBackend<float> inner) : IBackend<float>
{
    private readonly Dictionary<string, (long Ticks, int Calls)> _totals = [];

    public IReadOnlyDictionary<string, (long Ticks, int Calls)> Totals => _totals;

    public void Reset() => _totals.Clear();

    private void Time(string label, Action op)
    {
        long start = Stopwatch.GetTimestamp();
        op();
        long took = Stopwatch.GetTimestamp() - start;
        _totals[label] = _totals.TryGetValue(label, out var t) ? (t.Ticks + took, t.Calls + 1) : (took, 1);
    }

    private static string Conv(string pass, in Conv2dShape s) =>
        $"conv {pass} {s.InChannels}→{s.OutChannels} {s.InHeight}×{s.InWidth} k{s.KernelH} s{s.StrideH}";

    public BackendInfo Info => inner.Info;
    public void Dispose() => inner.Dispose();
    public Storage<U> Allocate<U>(long length) where U : unmanaged => inner.Allocate<U>(length);
    public void Upload<U>(Tensor<U> dst, ReadOnlySpan<U> src) where U : unmanaged => inner.Upload(dst, src);
    public void Download<U>(Span<U> dst, Tensor<U> src) where U : unmanaged => inner.Download(dst, src);
    public void Synchronize() => inner.Synchronize();
    public void Fill(Tensor<float> x, double value) => Time("fill", () => inner.Fill(x, value));
    public void Copy(Tensor<float> dst, Tensor<float> src) => Time("copy", () => inner.Copy(dst, src));
    public void Scale(Tensor<float> x, double alpha) => Time("scale", () => inner.Scale(x, alpha));
    public void Axpy(Tensor<float> y, double alpha, Tensor<float> x) => Time("axpy", () => inner.Axpy(y, alpha, x));
    public void Add(Tensor<float> y, Tensor<float> a, Tensor<float> b) => Time("add (residual)", () => inner.Add(y, a, b));
    public void ReluForward(Tensor<float> y, Tensor<float> x) => Time("relu forward", () => inner.ReluForward(y, x));
    public void ReluBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y) => Time("relu backward", () => inner.ReluBackward(dx, dy, y));
    public void Gemm(Tensor<float> c, Tensor<float> a, Tensor<float> b, in GemmShape s) { var v = s; Time("gemm", () => inner.Gemm(c, a, b, v)); }
    public void LinearForward(Tensor<float> y, Tensor<float> x, Tensor<float> w, Tensor<float> bias, in LinearShape s) { var v = s; Time("linear forward", () => inner.LinearForward(y, x, w, bias, v)); }
    public void LinearBackwardData(Tensor<float> dx, Tensor<float> dy, Tensor<float> w, in LinearShape s) { var v = s; Time("linear backward", () => inner.LinearBackwardData(dx, dy, w, v)); }
    public void LinearBackwardWeights(Tensor<float> dw, Tensor<float> dbias, Tensor<float> dy, Tensor<float> x, in LinearShape s) { var v = s; Time("linear backward", () => inner.LinearBackwardWeights(dw, dbias, dy, x, v)); }
    public void Conv2dForward(Tensor<float> y, Tensor<float> x, Tensor<float> w, in Conv2dShape s) { var v = s; Time(Conv("fwd", v), () => inner.Conv2dForward(y, x, w, v)); }
    public void Conv2dBackwardData(Tensor<float> dx, Tensor<float> dy, Tensor<float> w, in Conv2dShape s) { var v = s; Time(Conv("bwd_data", v), () => inner.Conv2dBackwardData(dx, dy, w, v)); }
    public void Conv2dBackwardFilter(Tensor<float> dw, Tensor<float> dy, Tensor<float> x, in Conv2dShape s) { var v = s; Time(Conv("bwd_filter", v), () => inner.Conv2dBackwardFilter(dw, dy, x, v)); }
    public void BatchNormForwardTraining(Tensor<float> y, Tensor<float> saveMean, Tensor<float> saveInvStd, Tensor<float> runningMean, Tensor<float> runningVar,
        Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, in BatchNormShape s)
    { var v = s; Time("batch norm forward", () => inner.BatchNormForwardTraining(y, saveMean, saveInvStd, runningMean, runningVar, x, gamma, beta, v)); }
    public void BatchNormForwardInference(Tensor<float> y, Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, Tensor<float> runningMean, Tensor<float> runningVar, in BatchNormShape s)
    { var v = s; Time("batch norm inference", () => inner.BatchNormForwardInference(y, x, gamma, beta, runningMean, runningVar, v)); }
    public void BatchNormBackward(Tensor<float> dx, Tensor<float> dgamma, Tensor<float> dbeta, Tensor<float> dy, Tensor<float> x, Tensor<float> gamma,
        Tensor<float> saveMean, Tensor<float> saveInvStd, in BatchNormShape s)
    { var v = s; Time("batch norm backward", () => inner.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInvStd, v)); }
    public void SyncBatchNormStatistics(Tensor<double> sums, Tensor<float> x, in BatchNormShape s)
    { var v = s; Time("sync batch norm statistics", () => inner.SyncBatchNormStatistics(sums, x, v)); }
    public void SyncBatchNormForward(Tensor<float> y, Tensor<float> saveMean, Tensor<float> saveInvStd, Tensor<float> runningMean, Tensor<float> runningVar,
        Tensor<float> x, Tensor<float> gamma, Tensor<float> beta, Tensor<double> sums, in BatchNormShape s)
    { var v = s; Time("sync batch norm forward", () => inner.SyncBatchNormForward(y, saveMean, saveInvStd, runningMean, runningVar, x, gamma, beta, sums, v)); }
    public void SyncBatchNormBackwardReduce(Tensor<double> sums, Tensor<float> dgamma, Tensor<float> dbeta, Tensor<float> dy, Tensor<float> x,
        Tensor<float> saveMean, Tensor<float> saveInvStd, in BatchNormShape s)
    { var v = s; Time("sync batch norm backward reduce", () => inner.SyncBatchNormBackwardReduce(sums, dgamma, dbeta, dy, x, saveMean, saveInvStd, v)); }
    public void SyncBatchNormBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> x, Tensor<float> gamma, Tensor<float> saveMean, Tensor<float> saveInvStd,
        Tensor<double> sums, in BatchNormShape s)
    { var v = s; Time("sync batch norm backward", () => inner.SyncBatchNormBackward(dx, dy, x, gamma, saveMean, saveInvStd, sums, v)); }
    public void MaxPoolForward(Tensor<float> y, Tensor<float> x, in PoolShape s) { var v = s; Time("max pool", () => inner.MaxPoolForward(y, x, v)); }
    public void MaxPoolBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> x, in PoolShape s) { var v = s; Time("max pool", () => inner.MaxPoolBackward(dx, dy, y, x, v)); }
    public void GlobalAvgPoolForward(Tensor<float> y, Tensor<float> x, int batch, int channels, int spatial) => Time("global average pool", () => inner.GlobalAvgPoolForward(y, x, batch, channels, spatial));
    public void GlobalAvgPoolBackward(Tensor<float> dx, Tensor<float> dy, int batch, int channels, int spatial) => Time("global average pool", () => inner.GlobalAvgPoolBackward(dx, dy, batch, channels, spatial));
    public void L2NormalizeForward(Tensor<float> y, Tensor<float> norms, Tensor<float> x, in RowsShape s) { var v = s; Time("l2 normalize", () => inner.L2NormalizeForward(y, norms, x, v)); }
    public void L2NormalizeBackward(Tensor<float> dx, Tensor<float> dy, Tensor<float> y, Tensor<float> norms, in RowsShape s) { var v = s; Time("l2 normalize", () => inner.L2NormalizeBackward(dx, dy, y, norms, v)); }
    public void NtXentForward(Tensor<float> loss, Tensor<float> rowLse, Tensor<float> norms, Tensor<float> z, in NtXentShape s) { var v = s; Time("nt-xent", () => inner.NtXentForward(loss, rowLse, norms, z, v)); }
    public void NtXentBackward(Tensor<float> dz, Tensor<float> z, Tensor<float> rowLse, Tensor<float> norms, in NtXentShape s, double lossGrad = 1.0)
    { var v = s; Time("nt-xent", () => inner.NtXentBackward(dz, z, rowLse, norms, v, lossGrad)); }
    public void CosineSimilarity(Tensor<float> s, Tensor<float> a, Tensor<float> b, int m, int n, int dim) => Time("cosine", () => inner.CosineSimilarity(s, a, b, m, n, dim));
    public void SoftmaxCrossEntropyForward(Tensor<float> loss, Tensor<float> probs, Tensor<float> logits, Tensor<int> labels, in ClassShape s) { var v = s; Time("softmax xent", () => inner.SoftmaxCrossEntropyForward(loss, probs, logits, labels, v)); }
    public void SoftmaxCrossEntropyBackward(Tensor<float> dlogits, Tensor<float> probs, Tensor<int> labels, in ClassShape s, double lossGrad = 1.0)
    { var v = s; Time("softmax xent", () => inner.SoftmaxCrossEntropyBackward(dlogits, probs, labels, v, lossGrad)); }
    public void LarsUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, Tensor<float> normScratch, in LarsHyper h)
    { var v = h; Time("lars", () => inner.LarsUpdate(param, momentum, grad, segments, normScratch, v)); }
    public void SgdMomentumUpdate(Tensor<float> param, Tensor<float> momentum, Tensor<float> grad, Tensor<ParamSegment> segments, in SgdHyper h)
    { var v = h; Time("sgd", () => inner.SgdMomentumUpdate(param, momentum, grad, segments, v)); }
    public void AugmentViews(Tensor<float> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key)
    { var (a, b, c) = (set, spec, key); Time("augment", () => inner.AugmentViews(views, images, sampleIndices, a, b, c)); }
}

public static class StepProfile
{
    public static int Run(string[] args)
    {
        double width = 1.0;
        int batch = 32, steps = 5;
        string? json = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--width": width = double.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(Value()); break;
                case "--steps": steps = int.Parse(Value()); break;
                case "--json": json = Value(); break;
                default: throw new UsageException($"unknown profile option '{args[i]}'");
            }
        }
        using var cpu = new CpuBackend<float>();
        var timing = new TimingBackend(cpu);
        var config = new SimClrModelConfig
        {
            Arch = ResNetArch.ResNet18, Stem = StemKind.Cifar, WidthMultiplier = width, BatchSize = batch, ImageHeight = 32, ImageWidth = 32, Seed = 7,
        };
        using var model = new SimClrModel<float>(timing, config);
        using var buffers = new CaseBuffers(cpu);
        var views = buffers.Random(model.InputShape, 3).Reshape(model.InputShape, Layout.NCHW);
        var momentum = buffers.Zeros<float>(model.Parameters.Parameters.Shape);
        var scratch = buffers.Zeros<float>(new Shape(2 * model.Parameters.SegmentCount));
        var lars = new LarsHyper(LearningRate: 0.3 * batch / 256);
        void Step()
        {
            model.Parameters.ZeroGradients();
            model.Forward(views);
            model.Backward();
            timing.LarsUpdate(model.Parameters.Parameters, momentum, model.Parameters.Gradients, model.Parameters.Segments, scratch, lars);
        }
        Step();
        timing.Reset();
        var wall = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++) Step();
        double stepMs = wall.Elapsed.TotalMilliseconds / steps;
        double Ms(long ticks) => ticks * 1e3 / Stopwatch.Frequency / steps;

        var rows = timing.Totals.Select(kv => (Label: kv.Key, Ms: Ms(kv.Value.Ticks), Calls: kv.Value.Calls / steps)).ToList();
        string Kind(string label) => label.StartsWith("conv ", StringComparison.Ordinal) ? $"conv {label.Split(' ')[1]}" : label;
        var byKind = rows.GroupBy(r => Kind(r.Label)).Select(g => (Kind: g.Key, Ms: g.Sum(r => r.Ms), Calls: g.Sum(r => r.Calls))).OrderByDescending(g => g.Ms).ToList();
        double inOps = rows.Sum(r => r.Ms);
        Console.WriteLine($"ResNet-18 CIFAR ×{width}, B = {batch} ({2 * batch} views of 32×32), {steps} steps on {cpu.Info.Description}: {stepMs:F1} ms per step, {inOps:F1} ms in ops");
        Console.WriteLine("| op | calls/step | ms/step | % of step |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (kind, ms, calls) in byKind) Console.WriteLine($"| {kind} | {calls} | {ms:F1} | {100 * ms / stepMs:F1} |");
        Console.WriteLine($"| (outside ops: layer bookkeeping) | | {stepMs - inOps:F1} | {100 * (stepMs - inOps) / stepMs:F1} |");
        Console.WriteLine();
        Console.WriteLine("| convolution pass and shape | ms/step |");
        Console.WriteLine("|---|---:|");
        foreach (var r in rows.Where(r => r.Label.StartsWith("conv ", StringComparison.Ordinal)).OrderByDescending(r => r.Ms)) Console.WriteLine($"| {r.Label} (×{r.Calls}) | {r.Ms:F1} |");
        if (json is not null)
            File.WriteAllText(json, JsonSerializer.Serialize(new { width, batch, steps, step_ms = stepMs, ops = rows.Select(r => new { op = r.Label, ms = r.Ms, calls = r.Calls }) }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }
}
