// The GPU suites. `kernels` times the hand-written CUDA kernels (NT-Xent, cosine similarity, augment,
// LARS, element-wise) through the same op cases as the CPU suite; `step` times whole SimCLR training
// steps. Both time with CUDA events on the backend's stream and hold each figure against a roofline
// measured on the device: device-to-device copy bandwidth and the cuBLAS SGEMM rate. Without a CUDA
// device (or driver, or library) a suite prints the reason and exits 0 (3 under SIMCLR_REQUIRE_CUDA=1);
// a backend that throws while opening is one FAILED line and exit 1.
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;
using SimClr.Layers;

namespace SimClr.Benchmarks;

/// <summary>Times with a pair of CUDA events around the repetitions, then waits for the stop event.</summary>
public sealed class CudaEventClock(CudaBackend backend) : IBenchClock, IDisposable
{
    private readonly CudaEvent _start = backend.CreateEvent(EventTiming.Enabled);
    private readonly CudaEvent _stop = backend.CreateEvent(EventTiming.Enabled);

    public string Name => "CUDA events";

    public double Seconds(Action body, int repetitions)
    {
        _start.Record();
        for (int r = 0; r < repetitions; r++) body();
        _stop.Record();
        _stop.Synchronize();
        return _stop.ElapsedMillisecondsSince(_start) / 1e3;
    }

    public void Dispose()
    {
        _start.Dispose();
        _stop.Dispose();
    }
}

public static class GpuSuites
{
    public static SuiteReport Kernels(BenchOptions options) => WithDevice(options, (backend, clock, report) =>
    {
        bool smoke = options.Sizes == SizeSet.Smoke;
        SuiteRunner.RunCases(report, backend, clock, smoke ? SmokeKernelCases() : FullKernelCases(), options, "device buffers");
    });

    public static SuiteReport Step(BenchOptions options) => WithDevice(options, (backend, clock, report) =>
    {
        StepWorkload[] workloads = options.Sizes == SizeSet.Smoke
            ? [new("resnet18-cifar", ResNetArch.ResNet18, StemKind.Cifar, 1.0, 8, 32, AugmentSpec.Cifar(32))]
            : [
                new("resnet18-cifar", ResNetArch.ResNet18, StemKind.Cifar, 1.0, 512, 32, AugmentSpec.Cifar(32)),
                new("resnet50", ResNetArch.ResNet50, StemKind.ImageNet, 1.0, 128, 256, AugmentSpec.Paper(224)),
            ];
        StepBenchmarks.Run(report, backend, clock, options, workloads, "device memory growth (cuMemGetInfo)", DeviceMemoryInUse, () => backend.AllocationCount);
    });

    private static IEnumerable<OpCase> FullKernelCases()
    {
        int[] rows = [1024, 4096, 8192, 16384];
        foreach (int r in rows) yield return OpCases.NtXent(r, 128);
        foreach (int r in rows) yield return OpCases.NtXentForward(r, 128);
        foreach (int r in rows) yield return OpCases.Cosine(r, r, 128);
        yield return OpCases.Augment("cifar", 512, 32, AugmentSpec.Cifar(32));
        yield return OpCases.Augment("imagenet", 256, 256, AugmentSpec.Paper(224));
        yield return OpCases.Lars("resnet18", Models.Segments(ResNetArch.ResNet18, StemKind.Cifar));
        yield return OpCases.Lars("resnet50", Models.Segments(ResNetArch.ResNet50, StemKind.ImageNet));
        foreach (var op in Enum.GetValues<OpCases.Elementwise>()) yield return OpCases.ElementwiseOp(op, 1 << 26);
    }

    private static IEnumerable<OpCase> SmokeKernelCases()
    {
        yield return OpCases.NtXent(256, 128);
        yield return OpCases.NtXentForward(256, 128);
        yield return OpCases.Cosine(256, 256, 128);
        yield return OpCases.Augment("cifar", 16, 32, AugmentSpec.Cifar(32));
        yield return OpCases.Lars("resnet18", Models.Segments(ResNetArch.ResNet18, StemKind.Cifar));
        foreach (var op in Enum.GetValues<OpCases.Elementwise>()) yield return OpCases.ElementwiseOp(op, 1 << 20);
    }

    private static long DeviceMemoryInUse()
    {
        var (free, total) = Driver.MemoryInfo();
        return total - free;
    }

    private static SuiteReport WithDevice(BenchOptions options, Action<CudaBackend, IBenchClock, SuiteReport> body)
    {
        string suite = options.Suite.ToString().ToLowerInvariant();
        var info = CudaInfo.Probe();
        if (!info.Available) throw new GpuUnavailableException($"{suite}: skipped, CUDA is not usable here: {info.Reason}", broken: false);
        CudaBackend backend;
        try
        {
            backend = new CudaBackend(0, new CudaBackendOptions { Convolutions = options.Convolutions });
        }
        catch (CudaNotAvailableException e)
        {
            throw new GpuUnavailableException($"{suite}: skipped, the CUDA backend could not open device 0: {e.Message}", broken: false);
        }
        catch (Exception e) when (e is NativeCallException or DllNotFoundException or EntryPointNotFoundException)
        {
            // Reported once, here; the suite does not go on to fail op by op.
            throw new GpuUnavailableException($"{suite}: FAILED, the CUDA backend threw while opening device 0: {e.GetType().Name}: {e.Message}", broken: true);
        }
        using (backend)
        using (var clock = new CudaEventClock(backend))
        {
            var (major, minor) = backend.ComputeCapability;
            var report = new SuiteReport
            {
                Suite = suite, Sizes = options.Sizes.ToString().ToLowerInvariant(), Clock = clock.Name, AutosavePath = options.JsonPath,
                Device = $"{backend.DeviceName} (sm_{major}{minor}, {backend.MultiprocessorCount} SMs, {backend.TotalMemory / (1L << 30)} GiB), driver {info.DriverVersion}, cuBLAS {info.CublasVersion}, cuDNN {info.CudnnVersion}, math {backend.MathMode}, {options.Convolutions} convolutions",
            };
            Console.Error.WriteLine("measuring the GPU roofline ...");
            report.Roofline = GpuRoofline.Measure(backend, clock, options);
            report.Notes.Add("memory column: kernels: the bytes of the buffers the benchmark allocates (ops never allocate); step: device memory growth from before the model is built to after the first step");
            body(backend, clock, report);
            return report;
        }
    }
}

/// <summary>The device's ceilings: the driver's device-to-device copy bandwidth and the cuBLAS SGEMM rate
/// (in the backend's math mode: plain FP32 unless TF32 was asked for).</summary>
public static class GpuRoofline
{
    public static Roofline Measure(CudaBackend backend, IBenchClock clock, BenchOptions options)
    {
        bool smoke = options.Sizes == SizeSet.Smoke;
        var settings = MeasureSettings.For(options);
        long floats = smoke ? 16L << 20 : 128L << 20;
        double bandwidth;
        using (var buffers = new CaseBuffers(backend))
        {
            var src = buffers.Zeros<float>(new Shape(checked((int)floats)));
            var dst = buffers.Zeros<float>(new Shape((int)floats));
            // The driver's device-to-device copy, not our copy kernel, so the kernel is measured against it.
            ulong to = (ulong)dst.Address, from = (ulong)src.Address;
            long bytes = floats * sizeof(float);
            var t = SimClr.Benchmarks.Measure.Run(clock, () => Driver.CopyDeviceToDeviceAsync(to, from, bytes, backend.Stream), settings);
            bandwidth = 2.0 * bytes / t.MinSeconds / 1e9;
        }
        int n = smoke ? 1024 : 8192;
        double gflops;
        using (var buffers = new CaseBuffers(backend))
        {
            var a = buffers.Random(new Shape(n, n), 1);
            var b = buffers.Random(new Shape(n, n), 2);
            var c = buffers.Zeros<float>(new Shape(n, n));
            var s = new GemmShape(n, n, n);
            var t = SimClr.Benchmarks.Measure.Run(clock, () => backend.Gemm(c, a, b, s), settings);
            gflops = s.Flops / t.MinSeconds / 1e9;
        }
        return new Roofline(gflops, bandwidth,
            $"cuBLAS SGEMM {n}³ ({backend.MathMode}), fastest of ≥ 20",
            $"cuMemcpyDtoDAsync of {floats * 4 >> 20} MiB (read + write bytes), fastest of ≥ 20");
    }
}
