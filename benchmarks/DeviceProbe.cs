// The `device` command: the first thing scripts/gpu-check.sh runs on a GPU host. In a few seconds it says
// whether CUDA is usable, and if not, why, in one line: what the driver and libraries report and where each
// library was loaded from (CudaInfo), whether a backend opens (cuBLAS and cuDNN handles), whether every
// kernel module loads and from what image (cubin, ptx, and why the loader fell back), and one small GEMM,
// convolution and NT-Xent against the CPU twin. Exit codes: 0 usable, 2 no usable device (missing driver,
// library or device), 1 present but broken (the backend or a kernel fails, or a result is wrong).
using System.Text.Json;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Cuda;

namespace SimClr.Benchmarks;

public static class DeviceProbe
{
    public const int Usable = 0, Broken = 1, NoDevice = 2;

    public static int Run(string? jsonPath)
    {
        var report = new Dictionary<string, object?>();
        int code = Probe(report);
        report["exit_code"] = code;
        if (jsonPath is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!);
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        }
        return code;
    }

    private static int Probe(Dictionary<string, object?> report)
    {
        var info = CudaInfo.Probe();
        foreach (var line in info.ToLines()) Console.WriteLine(line);
        report["cuda"] = info.ToLines();
        report["driver"] = info.DriverVersion;
        report["devices"] = info.Devices.Select(d => d.ToString()).ToList();
        report["libraries"] = info.Libraries.Select(l => $"{l.FileName} from {l.Path}").ToList();
        // Every outcome is one line, printed and kept as the report's verdict.
        int Verdict(string verdict, int code)
        {
            report["verdict"] = verdict;
            Console.WriteLine(verdict);
            return code;
        }
        if (!info.Available) return Verdict($"no usable CUDA device: {info.Reason}", NoDevice);

        CudaBackend backend;
        try
        {
            backend = new CudaBackend();
        }
        catch (Exception e)
        {
            int code = Verdict($"the CUDA backend failed to open: {e.GetType().Name}: {e.Message}", e is SimClr.Kernels.Cuda.Native.CudaNotAvailableException ? NoDevice : Broken);
            Console.Error.WriteLine(e);
            return code;
        }
        using (backend)
        {
            report["backend"] = backend.Info.Description;
            Console.WriteLine($"backend: {backend.Info.Description}");
            try
            {
                backend.LoadAllKernels();
            }
            catch (Exception e)
            {
                return Verdict($"a kernel module failed to load: {e.GetType().Name}: {e.Message}", Broken);
            }
            var modules = backend.KernelModules.OrderBy(m => m.Key, StringComparer.Ordinal)
                .ToDictionary(m => m.Key, m => $"{m.Value.Origin}, {m.Value.Image}{(m.Value.Fallback is { } f ? $" ({f})" : "")}");
            foreach (var (module, how) in modules) Console.WriteLine($"kernel module {module}: {how}");
            report["kernel_modules"] = modules;

            try
            {
                var checks = SanityChecks(backend);
                report["checks"] = checks.ToDictionary(c => c.Name, c => c.Error);
                foreach (var (name, error, tolerance) in checks)
                    Console.WriteLine($"check {name}: relative error {error:E2} (tolerance {tolerance:E0}){(error <= tolerance ? "" : " FAILED")}");
                var failed = checks.Where(c => !(c.Error <= c.Tolerance)).Select(c => c.Name).ToList();
                if (failed.Count > 0) return Verdict($"the GPU disagrees with the CPU twin in: {string.Join(", ", failed)}", Broken);
            }
            catch (Exception e)
            {
                return Verdict($"a first op on the device failed: {e.GetType().Name}: {e.Message}", Broken);
            }
            report["verdict"] = "usable";
            Console.WriteLine($"CUDA usable: {backend.DeviceName}");
            return Usable;
        }
    }

    private static float[] Random(long length, ulong seed)
    {
        var values = new float[length];
        HostData.Uniform(values, seed, 1f);
        return values;
    }

    /// <summary>One cuBLAS, one cuDNN and one hand-written kernel op, each against the CPU twin.</summary>
    private static List<(string Name, double Error, double Tolerance)> SanityChecks(CudaBackend gpu)
    {
        using var cpu = new CpuBackend<float>();
        var results = new List<(string, double, double)>();
        var gemm = new GemmShape(96, 80, 112);
        var a = Random(gemm.M * gemm.K, 1);
        var b = Random(gemm.K * gemm.N, 2);
        results.Add(("gemm", Compare(gpu, cpu, gemm.M * gemm.N, (be, c, t) => be.Gemm(c, t(a), t(b), gemm)), 1e-5));

        var conv = new Conv2dShape(2, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1);
        var x = Random(conv.InputElements, 3);
        var w = Random(conv.WeightElements, 4);
        results.Add(("conv forward", Compare(gpu, cpu, conv.OutputElements, (be, y, t) => be.Conv2dForward(y, t(x), t(w), conv)), 1e-5));

        var nt = new NtXentShape(256, 64, 0.5);
        var z = Random(nt.Rows * nt.Dim, 5);
        results.Add(("nt-xent forward", Compare(gpu, cpu, 1, (be, loss, t) =>
            be.NtXentForward(loss, t(new float[nt.Rows]), t(new float[nt.Rows]), t(z), nt)), 1e-5));
        return results;
    }

    /// <summary>Runs <paramref name="op"/> on both backends (t uploads host data) and returns max |gpu − cpu| / max |cpu|.</summary>
    private static double Compare(CudaBackend gpu, CpuBackend<float> cpu, long outputLength, Action<IBackend<float>, Tensor<float>, Func<float[], Tensor<float>>> op)
    {
        float[] Run(IBackend<float> backend)
        {
            var storages = new List<IDisposable>();
            Tensor<float> Upload(float[] values)
            {
                var s = backend.Allocate<float>(values.Length);
                storages.Add(s);
                var t = s.AsTensor();
                backend.Upload(t, values);
                return t;
            }
            try
            {
                var output = Upload(new float[outputLength]);
                op(backend, output, Upload);
                var result = new float[outputLength];
                backend.Download(result.AsSpan(), output);
                return result;
            }
            finally
            {
                foreach (var s in storages) s.Dispose();
            }
        }
        var want = Run(cpu);
        var got = Run(gpu);
        double diff = 0, scale = 0;
        for (int i = 0; i < want.Length; i++)
        {
            if (float.IsNaN(got[i]) != float.IsNaN(want[i])) return double.PositiveInfinity;
            diff = Math.Max(diff, Math.Abs((double)got[i] - want[i]));
            scale = Math.Max(scale, Math.Abs((double)want[i]));
        }
        return diff / Math.Max(scale, 1e-30);
    }
}
