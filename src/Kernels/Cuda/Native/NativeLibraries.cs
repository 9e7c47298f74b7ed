// Finds and loads the NVIDIA libraries (driver, NVRTC, cuBLAS, cuDNN, NCCL) for the P/Invoke bindings, so the
// program starts without CUDA and only the first CUDA call asks for them. The search order is fixed:
// folders in SIMCLR_CUDA_LIBRARY_PATH, the loader's default path, /usr/local/cuda/lib64 (and CUDA_PATH),
// then the nvidia/*/lib folders of NVIDIA's Python wheels in any site-packages found without running Python.
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
            try
            {
                var loaded = Load(library, Candidates(library), SearchFolders(library));
                Loaded[library] = loaded;
                return loaded;
            }
            catch (CudaNotAvailableException e)
            {
                Failed[library] = e;
                throw;
            }
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

    private static void TryRequireLocked(CudaLibrary library)
    {
        if (Loaded.ContainsKey(library) || Failed.ContainsKey(library)) return;
        try { Loaded[library] = Load(library, Candidates(library), SearchFolders(library)); }
        catch (CudaNotAvailableException e) { Failed[library] = e; }
    }

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
    /// (placed after the SIMCLR_CUDA_LIBRARY_PATH folders). Throws one message naming everything tried.</summary>
    internal static LoadedLibrary Load(CudaLibrary library, IReadOnlyList<string> fileNames, SearchPlan plan)
    {
        var errors = new List<string>();
        foreach (var folder in plan.Before)
            if (TryLoadFrom(library, fileNames, folder, errors) is { } hit) return hit;
        foreach (var file in fileNames)
        {
            if (NativeLibrary.TryLoad(file, out var handle))
                return new LoadedLibrary(library, file, MappedPath(file) ?? $"{file} (default loader path)", handle);
        }
        foreach (var folder in plan.After)
            if (TryLoadFrom(library, fileNames, folder, errors) is { } hit) return hit;

        var searched = plan.Before.Concat(["the default loader path (LD_LIBRARY_PATH, ld.so.cache)"]).Concat(plan.After);
        var detail = errors.Count > 0 ? $" Files that exist but failed to load: {string.Join("; ", errors)}." : "";
        throw new CudaNotAvailableException(
            $"{Describe(library)} not found: tried {string.Join(", ", fileNames)} in {string.Join(", ", searched)}.{detail} " +
            $"Set {PathVariable} to the folder holding it.");
    }

    private static LoadedLibrary? TryLoadFrom(CudaLibrary library, IReadOnlyList<string> fileNames, string folder, List<string> errors)
    {
        foreach (var file in fileNames)
        {
            var full = Path.Combine(folder, file);
            if (!File.Exists(full)) continue;
            PreloadSiblings(library, folder, file);
            try
            {
                return new LoadedLibrary(library, file, full, NativeLibrary.Load(full));
            }
            catch (DllNotFoundException e)
            {
                errors.Add($"{full}: {e.Message}");
            }
        }
        return null;
    }

    // Libraries in a wheel folder are not on the loader path, so the ones they open by soname
    // (cublasLt, nvrtc-builtins, cuDNN's sub-libraries) are loaded first; glibc then matches them by soname.
    private static void PreloadSiblings(CudaLibrary library, string folder, string file)
    {
        IEnumerable<string> siblings = library switch
        {
            CudaLibrary.Cublas => [file.Replace("libcublas", "libcublasLt", StringComparison.Ordinal)],
            CudaLibrary.Nvrtc => SafeGlob(folder, "libnvrtc-builtins.so*"),
            CudaLibrary.Cudnn => CudnnSubLibraries.Select(s => $"{s}{file["libcudnn".Length..]}"),
            _ => [],
        };
        foreach (var sibling in siblings)
        {
            var full = Path.Combine(folder, Path.GetFileName(sibling));
            if (File.Exists(full)) NativeLibrary.TryLoad(full, out _);
        }
    }

    // Dependency order of cuDNN 9's sub-libraries (cuDNN 8 names are included; missing ones are skipped).
    private static readonly string[] CudnnSubLibraries =
    [
        "libcudnn_graph", "libcudnn_engines_precompiled", "libcudnn_engines_runtime_compiled", "libcudnn_heuristic",
        "libcudnn_ops", "libcudnn_cnn", "libcudnn_adv",
        "libcudnn_ops_infer", "libcudnn_ops_train", "libcudnn_cnn_infer", "libcudnn_cnn_train", "libcudnn_adv_infer", "libcudnn_adv_train",
    ];

    /// <summary>Folders searched before and after the default loader path.</summary>
    internal sealed record SearchPlan(IReadOnlyList<string> Before, IReadOnlyList<string> After);

    internal static SearchPlan SearchFolders(CudaLibrary library)
    {
        var before = EnvironmentFolders();
        var after = new List<string>();
        if (library == CudaLibrary.Driver)
        {
            // The driver comes with the kernel module, never from a wheel or the toolkit (whose copy is a stub).
            after.AddRange(["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib"]);
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

        var sitePackages = new List<string>();
        foreach (var prefix in prefixes.Distinct(StringComparer.Ordinal))
            foreach (var lib in new[] { "lib", "lib64" })
                foreach (var python in SafeDirectories(Path.Combine(prefix, lib), "python3*"))
                    foreach (var kind in new[] { "site-packages", "dist-packages" })
                        sitePackages.Add(Path.Combine(python, kind));
        foreach (var entry in (Environment.GetEnvironmentVariable("PYTHONPATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            sitePackages.Add(entry);

        return [.. sitePackages.Distinct(StringComparer.Ordinal)
            .SelectMany(sp => SafeDirectories(Path.Combine(sp, "nvidia")))
            .Select(d => Path.Combine(d, "lib"))
            .Where(Directory.Exists)
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
