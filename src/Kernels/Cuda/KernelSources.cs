// Where kernel code comes from. Every kernels/*.cu and kernels/*.cuh is embedded in SimClr.Kernels (see
// build/nvcc.props), and so is kernels/<module>.fatbin when nvcc was present at build time. A module is
// named by its file stem ("ntxent" for kernels/ntxent.cu). Without a fatbin, NvrtcCompiler builds the
// source for the device at first use and keeps the result in a disk cache keyed by everything that
// changes the output (source, headers, options, NVRTC version). Loading is forgiving where it can be:
// a cached image the driver refuses (truncated, or from another driver) is deleted and rebuilt; a CUBIN
// the driver refuses (NVRTC newer than the driver) is replaced by PTX that the driver JIT-compiles, and
// the reason is recorded for `info` and the logs. Only PTX the driver cannot read is fatal, with a
// message that names both versions.
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

/// <summary>Where a loaded module's code came from, for `info` and logs.</summary>
public enum KernelOrigin { EmbeddedFatbin, NvrtcCompiled, NvrtcDiskCache }

/// <summary>A loaded module: where its code came from, what the image is ("cubin sm_90", "ptx compute_90",
/// "fatbin") and, when a first choice was refused, why the loader fell back (else null).</summary>
public sealed record KernelModuleInfo(KernelOrigin Origin, string Image, string? Fallback);

/// <summary>The kernel sources and fatbins embedded in this assembly.</summary>
public static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Assembly Owner = typeof(KernelSources).Assembly;
    private static readonly Lazy<string[]> ResourceNames = new(() => Owner.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray());
    private static readonly Lazy<IReadOnlyDictionary<string, string>> HeaderTexts = new(() =>
        ResourceNames.Value.Where(n => n.EndsWith(".cuh", StringComparison.Ordinal)).ToDictionary(n => n[Prefix.Length..], ReadText, StringComparer.Ordinal));

    /// <summary>Module names (file stems of kernels/*.cu), sorted.</summary>
    public static IReadOnlyList<string> Modules => [.. ResourceNames.Value.Where(n => n.EndsWith(".cu", StringComparison.Ordinal)).Select(n => n[Prefix.Length..^3])];

    /// <summary>Headers by include name ("common.cuh" → text); passed to NVRTC by name.</summary>
    public static IReadOnlyDictionary<string, string> Headers => HeaderTexts.Value;

    /// <summary>The CUDA C++ source of <paramref name="module"/>.</summary>
    public static string Source(string module)
    {
        var name = $"{Prefix}{module}.cu";
        if (!ResourceNames.Value.Contains(name))
            throw new ArgumentException($"no kernel module '{module}': embedded modules are {string.Join(", ", Modules)}", nameof(module));
        return ReadText(name);
    }

    /// <summary>The nvcc-built fatbin of <paramref name="module"/> (sm_80, sm_90 SASS + compute_90 PTX), or null.</summary>
    public static byte[]? Fatbin(string module)
    {
        using var stream = Owner.GetManifestResourceStream($"{Prefix}{module}.fatbin");
        if (stream is null) return null;
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>True when every module has an embedded fatbin.</summary>
    public static bool AllFatbinsEmbedded => Modules.Count > 0 && Modules.All(m => ResourceNames.Value.Contains($"{Prefix}{m}.fatbin"));

    private static string ReadText(string resource)
    {
        using var stream = Owner.GetManifestResourceStream(resource) ?? throw new InvalidOperationException($"embedded resource {resource} is missing");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

/// <summary>Compiles embedded kernel modules with NVRTC. Needs libnvrtc, never a GPU.</summary>
public static class NvrtcCompiler
{
    /// <summary>Options shared by every compilation (nvcc gets the same language level in build/nvcc.props).</summary>
    public static IReadOnlyList<string> CommonOptions { get; } = ["--std=c++17", "-lineinfo"];

    /// <summary>PTX of <paramref name="module"/> for a virtual architecture such as "compute_80" or "compute_90".
    /// Throws NvrtcException with the compiler log on an error, CudaNotAvailableException without libnvrtc.</summary>
    public static string Compile(string module, string architecture)
    {
        if (!architecture.StartsWith("compute_", StringComparison.Ordinal))
            throw new ArgumentException($"expected a virtual architecture like compute_80, got '{architecture}'", nameof(architecture));
        var ptx = Nvrtc.Compile($"{module}.cu", KernelSources.Source(module), KernelSources.Headers, Options(architecture), Nvrtc.Output.Ptx);
        return Encoding.UTF8.GetString(ptx).TrimEnd('\0');
    }

    /// <summary>Driver statuses that mean "this image cannot be used here" rather than a broken context.</summary>
    internal static bool IsImageRefusal(CuResult status) => status is CuResult.InvalidImage or CuResult.NoBinaryForGpu
        or CuResult.InvalidPtx or CuResult.UnsupportedPtxVersion or CuResult.JitCompilerNotFound or CuResult.InvalidSource;

    /// <summary>Compiles <paramref name="module"/> for a device of compute capability major.minor and hands the
    /// image to <paramref name="load"/> (cuModuleLoadData on a device; tests pass a checker). A CUBIN when this
    /// NVRTC knows the architecture, else PTX for the newest one it knows (the driver JIT-compiles it forward).
    /// A cached image that <paramref name="load"/> refuses is deleted and recompiled; a refused CUBIN falls back
    /// to PTX. <paramref name="load"/> signals a refusal by throwing a CudaException with an image status.</summary>
    internal static (T Loaded, KernelModuleInfo Info) LoadForDevice<T>(string module, int major, int minor, Func<byte[], T> load, string? cacheFolder = null)
    {
        var folder = cacheFolder ?? CacheFolder;
        int sm = major * 10 + minor;
        var supported = Nvrtc.SupportedArchitectures();
        var (nvrtcMajor, nvrtcMinor) = Nvrtc.Version();
        string nvrtcVersion = $"{nvrtcMajor}.{nvrtcMinor}";
        var notes = new List<string>();
        if (supported.Contains(sm))
        {
            try
            {
                return Build(module, $"sm_{sm}", Nvrtc.Output.Cubin, nvrtcVersion, load, folder, notes);
            }
            catch (CudaException e) when (IsImageRefusal(e.Status))
            {
                notes.Add($"the driver refused NVRTC {nvrtcVersion}'s CUBIN for sm_{sm} ({e.StatusName}): loaded PTX instead, JIT-compiled by the driver");
            }
        }
        else
        {
            notes.Add($"NVRTC {nvrtcVersion} cannot build sm_{sm} code: loaded PTX for an older architecture, JIT-compiled by the driver");
        }
        int target = supported.Where(a => a <= sm).DefaultIfEmpty(supported.Min()).Max();
        try
        {
            return Build(module, $"compute_{target}", Nvrtc.Output.Ptx, nvrtcVersion, load, folder, notes);
        }
        catch (CudaException e) when (IsImageRefusal(e.Status))
        {
            string driver = NativeLibraries.DriverCudaVersion() is { } v ? $"CUDA {NativeLibraries.FormatCudaVersion(v)}" : "an unknown CUDA version";
            throw new CudaException(e.Status, e.StatusName,
                $"the driver ({driver}) cannot load {module} compiled by NVRTC {nvrtcVersion} as CUBIN or as PTX; use an NVRTC no newer than the driver " +
                $"({NativeLibraries.PathVariable}) or update the driver. {string.Join("; ", notes)}", e.Call);
        }
    }

    private static (T Loaded, KernelModuleInfo Info) Build<T>(string module, string architecture, Nvrtc.Output output, string nvrtcVersion,
        Func<byte[], T> load, string cacheFolder, List<string> notes)
    {
        var options = Options(architecture);
        var source = KernelSources.Source(module);
        string kind = output == Nvrtc.Output.Cubin ? "cubin" : "ptx";
        var cacheFile = Path.Combine(cacheFolder, $"{module}-{CacheKey(module, source, options, nvrtcVersion)}.{kind}");
        string? Fallback() => notes.Count > 0 ? string.Join("; ", notes) : null;
        if (TryRead(cacheFile) is { } cached)
        {
            try
            {
                return (load(cached), new KernelModuleInfo(KernelOrigin.NvrtcDiskCache, $"{kind} {architecture}", Fallback()));
            }
            catch (CudaException e) when (IsImageRefusal(e.Status))
            {
                // Truncated, or written by a build the driver no longer takes: rebuild it.
                TryDelete(cacheFile);
                notes.Add($"the cached {cacheFile} was refused ({e.StatusName}) and rebuilt");
            }
        }
        var image = Nvrtc.Compile($"{module}.cu", source, KernelSources.Headers, options, output);
        var loaded = load(image);
        TryWrite(cacheFile, image);
        return (loaded, new KernelModuleInfo(KernelOrigin.NvrtcCompiled, $"{kind} {architecture}", Fallback()));
    }

    /// <summary>$SIMCLR_KERNEL_CACHE, else $XDG_CACHE_HOME/simclr-native/kernels, else ~/.cache/simclr-native/kernels.</summary>
    public static string CacheFolder
    {
        get
        {
            if (Environment.GetEnvironmentVariable("SIMCLR_KERNEL_CACHE") is { Length: > 0 } explicitFolder) return explicitFolder;
            var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "simclr-native", "kernels");
        }
    }

    private static string[] Options(string architecture) => [$"--gpu-architecture={architecture}", .. CommonOptions];

    internal static string CacheKey(string module, string source, IEnumerable<string> options, string nvrtcVersion)
    {
        var text = new StringBuilder();
        text.Append(module).Append('\0').Append(source).Append('\0');
        foreach (var (name, header) in KernelSources.Headers.OrderBy(h => h.Key, StringComparer.Ordinal))
            text.Append(name).Append('\0').Append(header).Append('\0');
        text.Append(string.Join(' ', options)).Append('\0').Append(nvrtcVersion);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private static byte[]? TryRead(string file)
    {
        try { return File.Exists(file) ? File.ReadAllBytes(file) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>A temporary name beside <paramref name="file"/> that no other writer uses: two threads of one
    /// process (or two processes) building the same module must not write into one temporary file.</summary>
    internal static string TemporaryName(string file) => $"{file}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";

    // The cache is an optimization: an unwritable folder only costs a recompile next time. The image is
    // written whole under a unique name and renamed over the entry, so a reader sees an old or a new image,
    // never a mix of two writers.
    internal static void TryWrite(string file, byte[] image)
    {
        var temporary = TemporaryName(file);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(temporary, image);
            File.Move(temporary, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
        }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
