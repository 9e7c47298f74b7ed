// Turns --device into a backend. auto = CUDA when a device can be opened, else the CPU, said in one short
// line (the places searched for each library are long: `info` and --verbose show them); an explicit cuda
// request that cannot be met is a UserError that says why in full.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static class BackendFactory
{
    /// <summary>The longest reason the one-line CPU notice quotes from an exception before cutting it short.</summary>
    private const int ShortReasonLength = 60;

    /// <summary>The backend <paramref name="config"/>'s --device asks for, its notices as detailed as its --verbose says.</summary>
    public static IBackend<float> Create(RunConfig config, TextWriter log) => Create(DeviceRequest.Parse(config.Device), log, config.Verbosity);

    public static IBackend<float> Create(DeviceRequest request, TextWriter log, Verbosity verbosity = Verbosity.Normal)
    {
        if (request.Choice == DeviceChoice.Cpu) return new CpuBackend<float>();
        var probe = CudaInfo.Probe();
        string? problem = probe.Available ? null : probe.Reason ?? "CUDA libraries are missing";
        string verdict = CudaVerdict(probe);
        if (problem is null)
        {
            try
            {
                return new CudaBackend(request.Ordinal);
            }
            catch (Exception e) when (e is CudaNotAvailableException or NativeCallException or DllNotFoundException)
            {
                problem = e.Message;
                verdict = $"CUDA did not start: {Shorten(e.Message)}";
            }
        }
        if (request.Choice == DeviceChoice.Cuda)
            throw UserError.Option("--device", $"{request} cannot be used: {problem}");
        log.WriteLine(verbosity == Verbosity.Verbose
            ? $"device: cpu ({problem})"
            : $"device: cpu ({verdict}; `info` or --verbose shows where it looked)");
        return new CpuBackend<float>();
    }

    /// <summary>Why CUDA cannot be used, in a few words: "no CUDA driver", "no CUDA device", "cuDNN not found".</summary>
    public static string CudaVerdict(CudaInfo info)
    {
        if (info.Available) return "CUDA available";
        if (info.Reason is { } reason && reason.StartsWith("no CUDA", StringComparison.Ordinal))
            return reason.Split(':')[0];
        var missing = new List<string>();
        if (info.CublasVersion is null) missing.Add("cuBLAS");
        if (info.CudnnVersion is null) missing.Add("cuDNN");
        return missing.Count > 0 ? $"{string.Join(" and ", missing)} not found" : $"CUDA unusable: {Shorten(info.Reason ?? "unknown reason")}";
    }

    private static string Shorten(string message)
    {
        string first = message.Split('\n')[0];
        return first.Length <= ShortReasonLength ? first : first[..(ShortReasonLength - 1)] + "…";
    }
}
