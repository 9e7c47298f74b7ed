// What CUDA this machine offers, for the `info` command: driver, library versions and where each library
// was loaded from, the devices, and where kernels will come from. Probing never throws for a missing
// driver, library or device; it reports the reason instead.
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

/// <summary>One CUDA device as the driver describes it.</summary>
public sealed record CudaDeviceInfo(int Ordinal, string Name, int Major, int Minor, long TotalMemory, int Multiprocessors)
{
    public override string ToString() => $"cuda:{Ordinal} {Name}, compute capability {Major}.{Minor}, {TotalMemory / (double)(1L << 30):F1} GiB, {Multiprocessors} SMs";
}

/// <summary>The result of <see cref="CudaInfo.Probe"/>.</summary>
public sealed record CudaInfo(
    bool Available,
    string? Reason,
    string? DriverVersion,
    IReadOnlyList<CudaDeviceInfo> Devices,
    string? NvrtcVersion,
    string? CublasVersion,
    string? CudnnVersion,
    IReadOnlyList<string> LibraryProblems,
    IReadOnlyList<LoadedLibrary> Libraries,
    IReadOnlyList<string> KernelModules,
    string KernelSource)
{
    /// <summary>Looks at the driver, the devices and the libraries without opening a backend.</summary>
    public static CudaInfo Probe()
    {
        var problems = new List<string>();
        string? Try(Func<string> get, string what)
        {
            try { return get(); }
            catch (Exception e) when (e is CudaNotAvailableException or NativeCallException or DllNotFoundException or EntryPointNotFoundException)
            {
                problems.Add($"{what}: {e.Message}");
                return null;
            }
        }

        var nvrtc = Try(() => $"{Nvrtc.Version().Major}.{Nvrtc.Version().Minor}", "NVRTC");
        var cublas = Try(CublasLibraryVersion, "cuBLAS");
        var cudnn = Try(() => { var (a, b, c) = Cudnn.Version(); return $"{a}.{b}.{c}"; }, "cuDNN");
        var modules = KernelSources.Modules;
        var kernelSource = modules.Count == 0 ? "no kernel sources embedded"
            : KernelSources.AllFatbinsEmbedded ? "embedded fatbin (sm_80, sm_90 SASS + compute_90 PTX); NVRTC for other GPUs"
            : $"NVRTC at first use for the device's architecture, cached in {NvrtcCompiler.CacheFolder}";

        string? reason = null;
        string? driver = null;
        var devices = new List<CudaDeviceInfo>();
        try
        {
            Driver.Initialize();
            var (major, minor) = Driver.DriverVersion();
            driver = $"{major}.{minor}";
            int count = Driver.DeviceCount();
            for (int i = 0; i < count; i++)
            {
                int d = Driver.Device(i);
                devices.Add(new CudaDeviceInfo(i, Driver.DeviceName(d),
                    Driver.DeviceAttribute(d, CuDeviceAttribute.ComputeCapabilityMajor), Driver.DeviceAttribute(d, CuDeviceAttribute.ComputeCapabilityMinor),
                    Driver.DeviceTotalMemory(d), Driver.DeviceAttribute(d, CuDeviceAttribute.MultiprocessorCount)));
            }
            if (count == 0) reason = "no CUDA device: the driver reports none";
        }
        catch (CudaNotAvailableException e) { reason = $"no CUDA driver: {e.Message}"; }
        catch (CudaException e) { reason = $"no CUDA device: {e.Message}"; }

        return new CudaInfo(reason is null && cublas is not null && cudnn is not null, reason ?? (problems.Count > 0 ? string.Join("; ", problems) : null),
            driver, devices, nvrtc, cublas, cudnn, problems, NativeLibraries.LoadedLibraries(), modules, kernelSource);
    }

    // cublasGetProperty needs no handle (so no GPU): MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2.
    internal static unsafe string CublasLibraryVersion()
    {
        NativeLibraries.Require(CudaLibrary.Cublas);
        int major, minor, patch;
        Cublas.Check(Cublas.cublasGetProperty(0, &major));
        Cublas.Check(Cublas.cublasGetProperty(1, &minor));
        Cublas.Check(Cublas.cublasGetProperty(2, &patch));
        return $"{major}.{minor}.{patch}";
    }

    /// <summary>Human-readable lines for `info`: each library once, with its version and where it was loaded
    /// from, or why it was not found.</summary>
    public IReadOnlyList<string> ToLines()
    {
        var lines = new List<string> { Available ? "CUDA: available" : $"CUDA: not available ({Reason})" };
        if (DriverVersion is not null) lines.Add($"  driver API version: {DriverVersion}{LoadedFrom(CudaLibrary.Driver)}");
        foreach (var d in Devices) lines.Add($"  device {d}");
        lines.Add(LibraryLine("NVRTC", NvrtcVersion, CudaLibrary.Nvrtc));
        lines.Add(LibraryLine("cuBLAS", CublasVersion, CudaLibrary.Cublas));
        lines.Add(LibraryLine("cuDNN", CudnnVersion, CudaLibrary.Cudnn));
        lines.Add($"  kernels: {string.Join(", ", KernelModules)} ({KernelSource})");
        return lines;
    }

    private string LibraryLine(string name, string? version, CudaLibrary library) =>
        version is not null ? $"  {name}: {version}{LoadedFrom(library)}"
        : LibraryProblems.FirstOrDefault(p => p.StartsWith(name + ":", StringComparison.Ordinal)) is { } problem ? $"  {problem}"
        : $"  {name}: not found";

    private string LoadedFrom(CudaLibrary library) =>
        Libraries.FirstOrDefault(l => l.Library == library) is { } l ? $", {l.FileName} from {l.Path}" : "";
}
