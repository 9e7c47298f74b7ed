// Whole SimCLR training steps over the layers' SimClrModel: augment two views of B resident images,
// forward 2B views through encoder + head + NT-Xent, backward, LARS over the flat parameter buffer.
// Each workload is timed twice: the full step, and the ".train" step without augmentation, which is
// what PyTorch baselines time (there the augmentation runs in DataLoader workers beside the step).
using SimClr.Kernels;
using SimClr.Layers;

namespace SimClr.Benchmarks;

public sealed record StepWorkload(string Name, ResNetArch Arch, StemKind Stem, double Width, int Batch, int SourceSide, AugmentSpec Spec)
{
    public string Key => $"step.{Name}.b{Batch}";
    public string Shape => $"{Arch} {Stem} stem{(Width == 1.0 ? "" : $" ×{Width}")}, B={Batch} (2B views of {Spec.OutHeight}×{Spec.OutWidth})";
}

public static class StepBenchmarks
{
    /// <summary>The CPU suite's steps: a narrow ResNet-18 (CIFAR stem) at B = 8, where per-op overheads weigh,
    /// and the full-width one at B = 32, where the convolutions' arithmetic dominates (about a second a step).</summary>
    public static void RunCpu(SuiteReport report, IBackend<float> backend, IBenchClock clock, BenchOptions options)
    {
        StepWorkload[] workloads = options.Sizes == SizeSet.Smoke
            ? [new("resnet18-cifar-w0.125", ResNetArch.ResNet18, StemKind.Cifar, 0.125, 2, 16, AugmentSpec.Cifar(16))]
            : [
                new("resnet18-cifar-w0.25", ResNetArch.ResNet18, StemKind.Cifar, 0.25, 8, 32, AugmentSpec.Cifar(32)),
                new("resnet18-cifar", ResNetArch.ResNet18, StemKind.Cifar, 1.0, 32, 32, AugmentSpec.Cifar(32)),
            ];
        Run(report, backend, clock, options, workloads, "host buffers (params, grads, momentum, arena, views, images)", null, null);
    }

    /// <param name="deviceMemoryInUse">Reads the device's used memory; when given, the memory column is the
    /// growth from before the model is built to after the first step (library workspaces included).</param>
    /// <param name="allocationCount">Reads the backend's device-allocation counter; when given, timed steps
    /// that allocate are flagged (a step must not allocate).</param>
    public static void Run(SuiteReport report, IBackend<float> backend, IBenchClock clock, BenchOptions options,
        IEnumerable<StepWorkload> workloads, string memoryKind, Func<long>? deviceMemoryInUse, Func<long>? allocationCount)
    {
        var settings = MeasureSettings.For(options);
        var roof = report.Roofline ?? throw new InvalidOperationException("measure the roofline before running the step");
        foreach (var wl in workloads)
        {
            if (!options.Selects(wl.Key)) continue;
            Console.Error.Write($"  {wl.Key} ... ");
            try
            {
                RunWorkload(report, backend, clock, wl, settings, roof, memoryKind, deviceMemoryInUse, allocationCount);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                report.Failures.Add($"{wl.Key}: {e.GetType().Name}: {e.Message}");
                Console.Error.WriteLine($"FAILED ({e.GetType().Name}: {e.Message})");
            }
        }
    }

    private static void RunWorkload(SuiteReport report, IBackend<float> backend, IBenchClock clock, StepWorkload wl,
        MeasureSettings settings, Roofline roof, string memoryKind, Func<long>? deviceMemoryInUse, Func<long>? allocationCount)
    {
        long before = deviceMemoryInUse?.Invoke() ?? 0;
        var config = new SimClrModelConfig
        {
            Arch = wl.Arch, Stem = wl.Stem, WidthMultiplier = wl.Width, BatchSize = wl.Batch,
            ImageHeight = wl.Spec.OutHeight, ImageWidth = wl.Spec.OutWidth, Seed = 7,
        };
        using var model = new SimClrModel<float>(backend, config);
        using var buffers = new CaseBuffers(backend);
        var set = new ImageSetShape(wl.Batch, wl.SourceSide, wl.SourceSide, 3);
        var images = buffers.Zeros<byte>(new Shape(set.Count, set.Height, set.Width, set.Channels));
        backend.Upload(images, HostData.Pixels(set.Elements, 21));
        var indices = buffers.From<int>(new PhiloxStream(22).Permutation(wl.Batch));
        var views = buffers.Zeros<float>(model.InputShape, Layout.NCHW);
        var momentum = buffers.Zeros<float>(model.Parameters.Parameters.Shape);
        var scratch = buffers.Zeros<float>(new Shape(2 * model.Parameters.SegmentCount));
        var lars = new LarsHyper(LearningRate: 0.3 * wl.Batch / 256);
        var spec = wl.Spec;
        int epoch = 0;

        void Train()
        {
            model.Parameters.ZeroGradients();
            model.Forward(views);
            model.Backward();
            backend.LarsUpdate(model.Parameters.Parameters, momentum, model.Parameters.Gradients, model.Parameters.Segments, scratch, lars);
        }
        void Full()
        {
            var key0 = new AugmentKey(42, epoch, 0);
            var key1 = new AugmentKey(42, epoch++, 1);
            backend.AugmentViews(views.Rows(0, wl.Batch), images, indices, set, spec, key0);
            backend.AugmentViews(views.Rows(wl.Batch, wl.Batch), images, indices, set, spec, key1);
            Train();
        }

        // Without a device counter: every buffer of the step (params, grads, momentum, BN state, arena, views, images).
        long Memory() => deviceMemoryInUse is null
            ? buffers.Bytes + sizeof(float) * (2 * model.Parameters.FlatLength + model.Parameters.BufferCount + model.ActivationElements)
            : deviceMemoryInUse() - before;

        var work = new Work(Models.TrainingFlops(model), 0, 2.0 * wl.Batch, "views");
        long memory;
        try
        {
            Full();
            backend.Synchronize();
            memory = Memory();
            long allocated = allocationCount?.Invoke() ?? 0;
            var full = Measure.Run(clock, Full, settings);
            CheckNoAllocation(report, wl.Key, allocated, allocationCount);
            report.Add(BenchResult.From(wl.Key, "step", wl.Shape, full, work, roof, memory, memoryKind,
                "flops: convolutions and linears of forward + both gradients"));
            Console.Error.Write($"{full.MedianSeconds * 1e3:G4} ms; train only ... ");
        }
        catch (NotSupportedException e)
        {
            report.Notes.Add($"skipped {wl.Key}: {e.Message}");
            Console.Error.Write($"skipped ({e.Message}); train only ... ");
            Train();
            backend.Synchronize();
            memory = Memory();
        }
        long allocatedBeforeTrain = allocationCount?.Invoke() ?? 0;
        var train = Measure.Run(clock, Train, settings);
        CheckNoAllocation(report, wl.Key + ".train", allocatedBeforeTrain, allocationCount);
        report.Add(BenchResult.From(wl.Key + ".train", "step", wl.Shape + ", no augment", train, work, roof, memory, memoryKind,
            "forward + backward + LARS; compare with PyTorch's step"));
        Console.Error.WriteLine($"{train.MedianSeconds * 1e3:G4} ms");
    }

    private static void CheckNoAllocation(SuiteReport report, string key, long before, Func<long>? allocationCount)
    {
        if (allocationCount is null) return;
        long made = allocationCount() - before;
        if (made != 0) report.Notes.Add($"WARNING {key}: {made} device allocations during the timed steps (a step must not allocate)");
    }
}
