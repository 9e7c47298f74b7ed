// Finds and loads the NVIDIA libraries (driver, NVRTC, cuBLAS, cuDNN, NCCL) for the P/Invoke bindings, so the
// program starts without CUDA and only the first CUDA call asks for them. The search order is fixed:
// folders in SIMCLR_CUDA_LIBRARY_PATH, the loader's default path, /usr/local/cuda/lib64 (and CUDA_PATH),
// then the nvidia/*/lib folders of NVIDIA's Python wheels in any site-packages found without running Python
// (CUDA 12 wheels: nvidia/cublas/lib, nvidia/cuda_nvrtc/lib, nvidia/cudnn/lib; CUDA 13 wheels put cuBLAS,
// NVRTC and the runtime together in nvidia/cu13/lib, cuDNN stays in nvidia/cudnn/lib).
// Libraries newer than the driver are not used: a CUDA 13 cuBLAS or NVRTC loads on a CUDA 12 driver but
// fails later (handle creation, module load) with a message that does not say why, so when a driver is
// present NVRTC and cuBLAS majors above the driver's CUDA major are skipped, and a cuDNN whose CUDA runtime
// (cudnnGetCudartVersion) is newer than the driver is refused and the search goes on.
// A miss becomes one CudaNotAvailableException naming every file tried and every folder searched; a hit
// records the file it came from, which `info` prints.
using System.Reflection;
using System.Runtime.InteropServices;

namespace SimClr.Kernels.Cuda.Native;

/// <summary>The NVIDIA libraries the CUDA backend binds to.</summary>
public enum CudaLibrary { Driver, Nvrtc, Cublas, Cudnn, Nccl }

/// <summary>CUDA is not usable here: a library or a device is missing. The message says what was tried.</summary>
public sealed class CudaNotAvailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One successfully loaded library: its handle and the file it was loaded from.</summary>
public sealed record LoadedLibrary(CudaLibrary Library, string FileName, string Path, nint Handle);

public static class NativeLibraries
{
    /// <summary>Colon-separated folders searched before anything else.</summary>
    public const string PathVariable = "SIMCLR_CUDA_LIBRARY_PATH";

    // DllImport names used by the bindings; the resolver maps each to a loaded library.
    internal const string DriverName = "simclr-cuda";
    internal const string NvrtcName = "simclr-nvrtc";
    internal const string CublasName = "simclr-cublas";
    internal const string CudnnName = "simclr-cudnn";
    internal const string NcclName = "simclr-nccl";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<CudaLibrary, LoadedLibrary> Loaded = [];
    private static readonly Dictionary<CudaLibrary, CudaNotAvailableException> Failed = [];
    private static bool _registered;

    /// <summary>File names tried for each library, newest first.</summary>
    public static IReadOnlyList<string> Candidates(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => ["libcuda.so.1"],
        CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"],
        CudaLibrary.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"],
        CudaLibrary.Cudnn => ["libcudnn.so.9", "libcudnn.so.8"],
        CudaLibrary.Nccl => ["libnccl.so.2"],
        _ => throw new ArgumentOutOfRangeException(nameof(library)),
    };

    /// <summary>Loads <paramref name="library"/> (once) or throws CudaNotAvailableException saying what was tried.</summary>
    public static LoadedLibrary Require(CudaLibrary library)
    {
        lock (Gate)
        {
            EnsureResolver();
            if (Loaded.TryGetValue(library, out var hit)) return hit;
            if (Failed.TryGetValue(library, out var miss)) throw miss;
            // cuDNN 9 loads cuBLAS and NVRTC itself; loading ours first makes it find the same files.
            if (library == CudaLibrary.Cudnn)
            {
                TryRequireLocked(CudaLibrary.Cublas);
                TryRequireLocked(CudaLibrary.Nvrtc);
            }
            if (!TryRequireLocked(library)) throw Failed[library];
            return Loaded[library];
        }
    }
    /// <summary>The library if it is (or can be) loaded, else null.</summary>
    public static LoadedLibrary? TryRequire(CudaLibrary library)
    {
        try { return Require(library); }
        catch (CudaNotAvailableException) { return null; }
    }

    /// <summary>True when <paramref name="library"/> has been loaded already; never triggers a load.</summary>
    public static bool IsLoaded(CudaLibrary library)
    {
        lock (Gate) return Loaded.ContainsKey(library);
    }

    /// <summary>Every library loaded so far, for `info`.</summary>
    public static IReadOnlyList<LoadedLibrary> LoadedLibraries()
    {
        lock (Gate) return [.. Loaded.Values.OrderBy(l => l.Library)];
    }

    private static bool TryRequireLocked(CudaLibrary library)
    {
        if (Loaded.ContainsKey(library)) return true;
        if (Failed.ContainsKey(library)) return false;
        int? driver = library == CudaLibrary.Driver ? null : DriverCudaVersionLocked();
        try
        {
            Loaded[library] = Load(library, Candidates(library), SearchFolders(library), driver);
            return true;
        }
        catch (CudaNotAvailableException e)
        {
            Failed[library] = e;
            return false;
        }
    }

    /// <summary>The CUDA version the installed driver supports (cuDriverGetVersion: 13000 for 13.0), or null
    /// when there is no driver. Called through the export directly, not through the resolver that is running.</summary>
    private static unsafe int? DriverCudaVersionLocked()
    {
        if (!TryRequireLocked(CudaLibrary.Driver)) return null;
        if (!NativeLibrary.TryGetExport(Loaded[CudaLibrary.Driver].Handle, "cuDriverGetVersion", out var export)) return null;
        int version;
        return ((delegate* unmanaged<int*, CuResult>)export)(&version) == CuResult.Success ? version : null;
    }

    /// <summary>The CUDA version of the driver, for `info`; null without a driver.</summary>
    public static int? DriverCudaVersion()
    {
        lock (Gate) return DriverCudaVersionLocked();
    }

    /// <summary>The CUDA major a library file name is built for ("libcublas.so.12" → 12, "libnvrtc.so.11.2" → 11),
    /// or null where the name does not say (libcuda, libcudnn: cuDNN 9 has the same name for CUDA 12 and 13).</summary>
    internal static int? CudaMajorOf(CudaLibrary library, string fileName)
    {
        if (library is not (CudaLibrary.Nvrtc or CudaLibrary.Cublas)) return null;
        int so = fileName.IndexOf(".so.", StringComparison.Ordinal);
        if (so < 0) return null;
        var version = fileName[(so + 4)..].Split('.')[0];
        return int.TryParse(version, out int major) ? major : null;
    }

    /// <summary>Splits <paramref name="fileNames"/> into those a driver of CUDA <paramref name="driverVersion"/>
    /// (e.g. 12040) can run and those it cannot, each with the reason; every name is usable without a driver.</summary>
    internal static (IReadOnlyList<string> Usable, IReadOnlyList<string> Skipped) ForDriver(CudaLibrary library, IReadOnlyList<string> fileNames, int? driverVersion)
    {
        if (driverVersion is not { } v) return (fileNames, []);
        var usable = new List<string>();
        var skipped = new List<string>();
        foreach (var file in fileNames)
        {
            if (CudaMajorOf(library, file) is { } major && major > v / 1000)
                skipped.Add($"{file} (needs a CUDA {major} driver; this driver supports CUDA {FormatCudaVersion(v)})");
            else
                usable.Add(file);
        }
        return (usable, skipped);
    }

    /// <summary>12040 → "12.4".</summary>
    public static string FormatCudaVersion(int version) => $"{version / 1000}.{version % 1000 / 10}";

    /// <summary>Registers the DllImport resolver of this assembly once; the bindings' static constructors call it.</summary>
    internal static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_registered) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
            _registered = true;
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        CudaLibrary? library = name switch
        {
            DriverName => CudaLibrary.Driver,
            NvrtcName => CudaLibrary.Nvrtc,
            CublasName => CudaLibrary.Cublas,
            CudnnName => CudaLibrary.Cudnn,
            NcclName => CudaLibrary.Nccl,
            _ => null,
        };
        if (library is null) return 0;
        // A call that reaches here without Require first still gets the full message via DllNotFoundException.
        try { return Require(library.Value).Handle; }
        catch (CudaNotAvailableException e) { throw new DllNotFoundException(e.Message, e); }
    }

    /// <summary>Tries each file name in each folder, then by bare name through the default loader path
    /// (placed after the SIMCLR_CUDA_LIBRARY_PATH folders). With a driver present (<paramref name="driverVersion"/>),
    /// names and files built for a newer CUDA than the driver's are passed over. Throws one message naming
    /// everything tried.</summary>
    internal static LoadedLibrary Load(CudaLibrary library, IReadOnlyList<string> fileNames, SearchPlan plan, int? driverVersion = null)
    {
        var errors = new List<string>();
        var (usable, skipped) = ForDriver(library, fileNames, driverVersion);
        foreach (var folder in plan.Before)
            if (TryLoadFrom(library, usable, folder, driverVersion, errors) is { } hit) return hit;
        foreach (var file in plan.LoaderPath == LoaderPath.Searched ? usable : [])
        {
            if (!NativeLibrary.TryLoad(file, out var handle)) continue;
            var path = MappedPath(file) ?? $"{file} (default loader path)";
            if (Refusal(library, handle, driverVersion) is { } why)
            {
                errors.Add($"{path}: {why}");
                NativeLibrary.Free(handle);
                continue;
            }
            return new LoadedLibrary(library, file, path, handle);
        }
        foreach (var folder in plan.After)
            if (TryLoadFrom(library, usable, folder, driverVersion, errors) is { } hit) return hit;

        var searched = plan.Before.Concat(plan.LoaderPath == LoaderPath.Searched ? ["the default loader path (LD_LIBRARY_PATH, ld.so.cache)"] : []).Concat(plan.After);
        var detail = errors.Count > 0 ? $" Files found but not usable: {string.Join("; ", errors)}." : "";
        var passedOver = skipped.Count > 0 ? $" Not tried: {string.Join(", ", skipped)}." : "";
        throw new CudaNotAvailableException(
            $"{Describe(library)} not found: tried {string.Join(", ", usable)} in {string.Join(", ", searched)}.{detail}{passedOver} " +
            $"Set {PathVariable} to the folder holding it.");
    }

    /// <summary>The candidate files that exist in <paramref name="folder"/>, in the order they are tried.</summary>
    internal static IEnumerable<string> ExistingFiles(IReadOnlyList<string> fileNames, string folder) =>
        fileNames.Select(f => Path.Combine(folder, f)).Where(File.Exists);

    private static LoadedLibrary? TryLoadFrom(CudaLibrary library, IReadOnlyList<string> fileNames, string folder, int? driverVersion, List<string> errors)
    {
        foreach (var full in ExistingFiles(fileNames, folder))
        {
            var file = Path.GetFileName(full);
            foreach (var sibling in Siblings(library, folder, file)) NativeLibrary.TryLoad(sibling, out _);
            nint handle;
            try
            {
                handle = NativeLibrary.Load(full);
            }
            catch (DllNotFoundException e)
            {
                errors.Add($"{full}: failed to load: {e.Message}");
                continue;
            }
            if (Refusal(library, handle, driverVersion) is { } why)
            {
                errors.Add($"{full}: {why}");
                NativeLibrary.Free(handle);
                continue;
            }
            return new LoadedLibrary(library, file, full, handle);
        }
        return null;
    }

    /// <summary>Why a loaded library cannot serve this driver, or null. cuDNN's file name does not tell which
    /// CUDA it was built for, so it is asked (cudnnGetCudartVersion, present in cuDNN 8 and 9).</summary>
    private static unsafe string? Refusal(CudaLibrary library, nint handle, int? driverVersion)
    {
        if (library != CudaLibrary.Cudnn || driverVersion is not { } driver) return null;
        if (!NativeLibrary.TryGetExport(handle, "cudnnGetCudartVersion", out var export)) return null;
        int runtime = (int)((delegate* unmanaged<nuint>)export)();
        return CudnnRuntimeRefusal(runtime, driver);
    }

    /// <summary>Why a cuDNN built for CUDA runtime <paramref name="runtime"/> cannot run on a driver of CUDA
    /// <paramref name="driver"/> (a newer major), or null.</summary>
    internal static string? CudnnRuntimeRefusal(int runtime, int driver) =>
        runtime / 1000 > driver / 1000
            ? $"this cuDNN is built for CUDA {FormatCudaVersion(runtime)}, newer than the driver's CUDA {FormatCudaVersion(driver)} (install the cuDNN for CUDA {driver / 1000}, or a newer driver)"
            : null;

    // Libraries in a wheel folder are not on the loader path, so the ones they open by soname
    // (cublasLt, nvrtc-builtins, cuDNN's sub-libraries) are loaded first; glibc then matches them by soname.
    internal static IEnumerable<string> Siblings(CudaLibrary library, string folder, string file)
    {
        IEnumerable<string> names = library switch
        {
            CudaLibrary.Cublas => [file.Replace("libcublas", "libcublasLt", StringComparison.Ordinal)],
            CudaLibrary.Nvrtc => SafeGlob(folder, "libnvrtc-builtins.so*").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal),
            CudaLibrary.Cudnn => CudnnSubLibraries.Select(s => $"{s}{file["libcudnn".Length..]}"),
            _ => [],
        };
        return names.Select(n => Path.Combine(folder, n)).Where(File.Exists);
    }

    // Dependency order of cuDNN 9's sub-libraries (cuDNN 8 names are included; missing ones are skipped).
    private static readonly string[] CudnnSubLibraries =
    [
        "libcudnn_graph", "libcudnn_engines_precompiled", "libcudnn_engines_runtime_compiled", "libcudnn_heuristic",
        "libcudnn_ops", "libcudnn_cnn", "libcudnn_adv",
        "libcudnn_ops_infer", "libcudnn_ops_train", "libcudnn_cnn_infer", "libcudnn_cnn_train", "libcudnn_adv_infer", "libcudnn_adv_train",
    ];

    /// <summary>Whether a search asks the default loader path (LD_LIBRARY_PATH, ld.so.cache) by bare name.</summary>
    internal enum LoaderPath { Searched, Skipped }

    /// <summary>Folders searched before and after the default loader path.</summary>
    internal sealed record SearchPlan(IReadOnlyList<string> Before, IReadOnlyList<string> After, LoaderPath LoaderPath = LoaderPath.Searched);

    internal static SearchPlan SearchFolders(CudaLibrary library)
    {
        var before = EnvironmentFolders();
        var after = new List<string>();
        if (library == CudaLibrary.Driver)
        {
            // The driver comes with the kernel module, never from a wheel or the toolkit (whose copy is a stub);
            // containers often mount it under /usr/local/nvidia.
            after.AddRange(["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"]);
        }
        else
        {
            if (Environment.GetEnvironmentVariable("CUDA_PATH") is { Length: > 0 } cudaPath) after.Add(Path.Combine(cudaPath, "lib64"));
            after.Add("/usr/local/cuda/lib64");
            after.AddRange(WheelLibraryFolders());
        }
        return new SearchPlan(before, [.. after.Distinct(StringComparer.Ordinal).Where(f => !before.Contains(f))]);
    }

    private static List<string> EnvironmentFolders() =>
        [.. (Environment.GetEnvironmentVariable(PathVariable) ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Distinct(StringComparer.Ordinal)];

    /// <summary>nvidia/*/lib folders inside every site-packages or dist-packages that can be found by
    /// looking at the usual prefixes and at the prefix of each python3 on PATH.</summary>
    public static IReadOnlyList<string> WheelLibraryFolders()
    {
        var prefixes = new List<string> { "/usr", "/usr/local", "/opt/conda" };
        var home = Environment.GetEnvironmentVariable("HOME");
        if (!string.IsNullOrEmpty(home))
        {
            prefixes.Add(Path.Combine(home, ".local"));
            prefixes.AddRange(new[] { "miniconda3", "anaconda3", "miniforge3" }.Select(d => Path.Combine(home, d)));
            prefixes.AddRange(SafeDirectories(Path.Combine(home, ".pyenv", "versions")));
        }
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } p) prefixes.Add(p);
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (SafeGlob(dir, "python3*").Any() && Path.GetDirectoryName(dir.TrimEnd('/')) is { } prefix) prefixes.Add(prefix);
        var pythonPath = (Environment.GetEnvironmentVariable("PYTHONPATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        return WheelLibraryFolders(prefixes, pythonPath);
    }

    /// <summary>The nvidia/*/lib folders of the site-packages (and dist-packages) under
    /// <paramref name="prefixes"/> (prefix/lib*/python3*/) and of <paramref name="sitePackages"/> itself.</summary>
    internal static IReadOnlyList<string> WheelLibraryFolders(IEnumerable<string> prefixes, IEnumerable<string> sitePackages)
    {
        var roots = new List<string>();
        foreach (var prefix in prefixes.Distinct(StringComparer.Ordinal))
            foreach (var lib in new[] { "lib", "lib64" })
                foreach (var python in SafeDirectories(Path.Combine(prefix, lib), "python3*"))
                    foreach (var kind in new[] { "site-packages", "dist-packages" })
                        roots.Add(Path.Combine(python, kind));
        roots.AddRange(sitePackages);

        return [.. roots.Distinct(StringComparer.Ordinal)
            .SelectMany(sp => SafeDirectories(Path.Combine(sp, "nvidia")))
            .Select(d => Path.Combine(d, "lib"))
            .Where(Directory.Exists)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)];
    }

    private static IEnumerable<string> SafeDirectories(string folder, string pattern = "*")
    {
        try { return Directory.Exists(folder) ? Directory.GetDirectories(folder, pattern) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static IEnumerable<string> SafeGlob(string folder, string pattern)
    {
        try { return Directory.Exists(folder) ? Directory.GetFiles(folder, pattern) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>The file a bare-name load resolved to, read from /proc/self/maps.</summary>
    private static string? MappedPath(string fileName)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash < 0) continue;
                var path = line[slash..];
                if (Path.GetFileName(path).StartsWith(fileName, StringComparison.Ordinal)) return path;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    private static string Describe(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => "CUDA driver (libcuda)",
        CudaLibrary.Nvrtc => "NVRTC (libnvrtc)",
        CudaLibrary.Cublas => "cuBLAS (libcublas)",
        CudaLibrary.Cudnn => "cuDNN (libcudnn)",
        CudaLibrary.Nccl => "NCCL (libnccl)",
        _ => library.ToString(),
    };
}
