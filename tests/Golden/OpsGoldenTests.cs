// Golden ops: the SimCLR loss and the linear-evaluation pieces of the CPU twin against PyTorch in fp64 on
// the same fp32 values (tests/Golden/python/golden_ops.py), one Python process for the class:
//   NT-Xent at τ 0.5 and 0.1 (two sizes each): the loss and dL/dz;
//   the linear-classifier ops: LinearForward, softmax cross-entropy forward/backward, LinearBackwardWeights
//   and -Data, and one SgdMomentumUpdate (Nesterov, weight decay on the weight only) from a non-zero momentum;
//   the linear probe itself (LinearProbe.Fit over its own standardization and per-epoch orders), against
//   torch.optim.SGD(nesterov=True) with the same cosine schedule.
using System.Globalization;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Checkpoints;
using SimClr.Training.Evaluation;

namespace SimClr.Tests.Golden;

public sealed class OpsGoldenFixture : IDisposable
{
    public static readonly (string Key, int Rows, int Dim, double Temperature)[] NtXentCases =
    [
        ("ntxent.0", 16, 32, 0.5), ("ntxent.1", 16, 32, 0.1), ("ntxent.2", 64, 128, 0.5), ("ntxent.3", 64, 128, 0.1),
    ];

    public const int N = 32, D = 24, C = 5;
    public static readonly SgdHyper Sgd = new(LearningRate: 0.3, Momentum: 0.9, WeightDecay: 1e-2, Kind: MomentumKind.Nesterov);
    public static readonly LinearProbeOptions Probe = new(Epochs: 4, LearningRate: 0.5, WeightDecay: 1e-3, BatchSize: 32, Momentum: 0.9, Seed: 3);
    public const int ProbeRows = 96, ProbeDim = 12, ProbeClasses = 4;

    public string Dir { get; } = Directory.CreateTempSubdirectory("simclr-golden-ops").FullName;
    public Dictionary<string, float[]> Ours { get; } = [];
    public SafeTensorsFile Torch { get; }

    public OpsGoldenFixture()
    {
        var rng = new Random(17);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        float[] Normals(int n, float scale = 1) => [.. Enumerable.Range(0, n).Select(_ => scale * Normal())];
        var cpu = new CpuBackend<float>();
        var input = new SafeTensorsWriter();

        foreach (var (key, rows, dim, tau) in NtXentCases)
        {
            var z = Normals(rows * dim);
            input.Add<float>(key + ".z", z, [rows, dim]);
            input.AddMetadata(key + ".temperature", tau.ToString("R", CultureInfo.InvariantCulture));
            var shape = new NtXentShape(rows, dim, tau);
            var (loss, lse, norms, dz) = (Host(1), Host(rows), Host(rows), Host(rows * dim));
            var zt = Host(z);
            cpu.NtXentForward(loss, lse, norms, zt, shape);
            cpu.NtXentBackward(dz, zt, lse, norms, shape);
            Ours[key + ".loss"] = loss.Span.ToArray();
            Ours[key + ".dz"] = dz.Span.ToArray();
        }

        var (x, w, b) = (Normals(N * D), Normals(C * D, 0.3f), Normals(C, 0.1f));
        var labels = Enumerable.Range(0, N).Select(_ => rng.Next(C)).ToArray();
        var (vw, vb) = (Normals(C * D, 0.05f), Normals(C, 0.05f));
        input.Add<float>("linear.x", x, [N, D]);
        input.Add<float>("linear.w", w, [C, D]);
        input.Add<float>("linear.b", b, [C]);
        input.Add<long>("linear.labels", [.. labels.Select(l => (long)l)], [N]);
        input.Add<float>("linear.momentum.w", vw, [C, D]);
        input.Add<float>("linear.momentum.b", vb, [C]);
        input.AddMetadata("linear.sgd.lr", Sgd.LearningRate.ToString("R", CultureInfo.InvariantCulture));
        input.AddMetadata("linear.sgd.momentum", Sgd.Momentum.ToString("R", CultureInfo.InvariantCulture));
        input.AddMetadata("linear.sgd.weight_decay", Sgd.WeightDecay.ToString("R", CultureInfo.InvariantCulture));
        RunLinearOps(cpu, x, w, b, labels, vw, vb);

        // Probe features: class-dependent means, one constant column (standardized to 0), varied scales.
        var probeLabels = Enumerable.Range(0, ProbeRows).Select(i => i % ProbeClasses).ToArray();
        var features = new float[ProbeRows * ProbeDim];
        for (int i = 0; i < ProbeRows; i++)
            for (int j = 0; j < ProbeDim; j++)
                features[i * ProbeDim + j] = j == 3 ? 2.5f : (j + 1) * (Normal() + (probeLabels[i] == j % ProbeClasses ? 1.5f : 0f)) + 0.7f * j;
        input.Add<float>("probe.features", features, [ProbeRows, ProbeDim]);
        input.Add<long>("probe.labels", [.. probeLabels.Select(l => (long)l)], [ProbeRows]);
        var order = new PhiloxStream(Probe.Seed, LinearProbe.OrderStream);
        for (int e = 0; e < Probe.Epochs; e++) input.Add<long>($"probe.perm.{e}", [.. order.Permutation(ProbeRows).Select(p => (long)p)], [ProbeRows]);
        foreach (var (k, v) in new (string, double)[] { ("classes", ProbeClasses), ("epochs", Probe.Epochs), ("batch_size", Probe.BatchSize), ("lr", Probe.LearningRate), ("momentum", Probe.Momentum), ("weight_decay", Probe.WeightDecay) })
            input.AddMetadata("probe." + k, v.ToString("R", CultureInfo.InvariantCulture));
        var set = new FeatureSet(features, probeLabels, ProbeDim);
        var (mean, invStd) = LinearProbe.Standardizer(set);
        var xs = LinearProbe.Standardize(set, mean, invStd);
        var (pw, pb) = LinearProbe.Fit(xs, probeLabels, ProbeDim, ProbeClasses, Probe);
        Ours["probe.x"] = xs;
        Ours["probe.w"] = pw;
        Ours["probe.b"] = pb;

        string inputPath = Path.Combine(Dir, "input.safetensors"), output = Path.Combine(Dir, "torch.safetensors"), job = Path.Combine(Dir, "job.json");
        input.WriteAtomic(inputPath);
        TorchPython.WriteJob(job, new { input = inputPath, output });
        TorchPython.Run(TorchPython.Script("golden_ops.py"), Dir, job);
        Torch = SafeTensorsFile.Load(output);
    }

    private void RunLinearOps(CpuBackend<float> cpu, float[] x, float[] w, float[] b, int[] labels, float[] vw, float[] vb)
    {
        var shape = new LinearShape(N, D, C);
        var classes = new ClassShape(N, C);
        var (xt, wt, bt) = (Host(x), Host(w), Host(b));
        var (logits, loss, probs, dlogits, dw, db, dx) = (Host(N * C), Host(1), Host(N * C), Host(N * C), Host(C * D), Host(C), Host(N * D));
        var labelTensor = new HostStorage<int>(N);
        labels.CopyTo(labelTensor.HostSpan(0, N));
        cpu.LinearForward(logits, xt, wt, bt, shape);
        cpu.SoftmaxCrossEntropyForward(loss, probs, logits, labelTensor.AsTensor(), classes);
        cpu.SoftmaxCrossEntropyBackward(dlogits, probs, labelTensor.AsTensor(), classes);
        cpu.LinearBackwardWeights(dw, db, dlogits, xt, shape);
        cpu.LinearBackwardData(dx, dlogits, wt, shape);
        foreach (var (name, t) in new[] { ("logits", logits), ("loss", loss), ("dlogits", dlogits), ("dw", dw), ("db", db), ("dx", dx) })
            Ours["linear." + name] = t.Span.ToArray();

        // One Nesterov step over [w | b] as one flat buffer with two segments, as the parameter store lays them out.
        var param = Host([.. w, .. b]);
        var momentum = Host([.. vw, .. vb]);
        var grad = Host([.. dw.Span.ToArray(), .. db.Span.ToArray()]);
        var segments = new HostStorage<ParamSegment>(2);
        segments.HostSpan(0, 2)[0] = new ParamSegment(0, C * D, SegmentFlags.None);
        segments.HostSpan(0, 2)[1] = new ParamSegment(C * D, C, SegmentFlags.NoWeightDecay | SegmentFlags.NoAdaptation);
        cpu.SgdMomentumUpdate(param, momentum, grad, segments.AsTensor(), Sgd);
        Ours["linear.sgd.w"] = param.Span[..(C * D)].ToArray();
        Ours["linear.sgd.b"] = param.Span[(C * D)..].ToArray();
        Ours["linear.sgd.momentum.w"] = momentum.Span[..(C * D)].ToArray();
        Ours["linear.sgd.momentum.b"] = momentum.Span[(C * D)..].ToArray();
    }

    private static Tensor<float> Host(int length) => new HostStorage<float>(length).AsTensor();

    private static Tensor<float> Host(float[] values)
    {
        var t = Host(values.Length);
        values.CopyTo(t.Span);
        return t;
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

public sealed class OpsGoldenTests(OpsGoldenFixture f, ITestOutputHelper log) : IClassFixture<OpsGoldenFixture>
{
    /// <summary>The loss: fp32 normalization, 2N dot products and a log-sum-exp per row, against fp64;
    /// a few ulp of the loss. Counting the self-similarity in the denominator moves it by ≥ 1e-3.</summary>
    public const double NtXentLossTolerance = 1e-6;

    /// <summary>dL/dz through the normalization and the softmax over 2N−1 similarities, fp32 vs fp64: ≤ 1e-6 of
    /// the max in practice; 1e-5 leaves room for other summation orders, and a wrong term is ≥ 1e-2.</summary>
    public const double NtXentGradientTolerance = 1e-5;

    /// <summary>Linear ops and one SGD step are a handful of fp32 dot products over ≤ 32 terms each.</summary>
    public const double LinearOpsTolerance = 1e-6;

    /// <summary>The probe: 12 Nesterov steps in fp32 against fp64, errors compounding over the steps; still
    /// far below what a wrong weight decay, momentum form or schedule gives (≥ 1e-3).</summary>
    public const double ProbeTolerance = 1e-5;

    public static TheoryData<string> NtXentKeys => [.. OpsGoldenFixture.NtXentCases.Select(c => c.Key)];

    private double Check(string name, double tolerance)
    {
        double err = Golden.AssertClose(name, Golden.Values(f.Torch, name), [.. f.Ours[name].Select(v => (double)v)], tolerance);
        log.WriteLine($"{name}: max rel err {err:E2}");
        return err;
    }

    [Theory]
    [MemberData(nameof(NtXentKeys))]
    public void NtXentLossAndGradientEqualTorch(string key)
    {
        var c = OpsGoldenFixture.NtXentCases.Single(c => c.Key == key);
        log.WriteLine($"{key}: 2N = {c.Rows}, D = {c.Dim}, τ = {c.Temperature}");
        Check(key + ".loss", NtXentLossTolerance);
        Check(key + ".dz", NtXentGradientTolerance);
    }

    [Theory]
    [InlineData("logits")]
    [InlineData("loss")]
    [InlineData("dlogits")]
    [InlineData("dw")]
    [InlineData("db")]
    [InlineData("dx")]
    [InlineData("sgd.w")]
    [InlineData("sgd.b")]
    [InlineData("sgd.momentum.w")]
    [InlineData("sgd.momentum.b")]
    public void LinearClassifierOpsEqualTorch(string name) => Check("linear." + name, LinearOpsTolerance);

    [Theory]
    [InlineData("x")]
    [InlineData("w")]
    [InlineData("b")]
    public void LinearProbeEqualsTorchSgdNesterov(string name) => Check("probe." + name, ProbeTolerance);
}
