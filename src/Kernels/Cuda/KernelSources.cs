// Where kernel code comes from. Every kernels/*.cu and kernels/*.cuh is embedded in SimClr.Kernels (see
// build/nvcc.props), and so is kernels/<module>.fatbin when nvcc was present at build time. A module is
// named by its file stem ("ntxent" for kernels/ntxent.cu). Without a fatbin, NvrtcCompiler builds the
// source for the device at first use and keeps the result in a disk cache keyed by everything that
// changes the output (source, headers, options, NVRTC version).
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

/// <summary>Where a loaded module's code came from, for `info` and logs.</summary>
public enum KernelOrigin { EmbeddedFatbin, NvrtcCompiled, NvrtcDiskCache }

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

    /// <summary>Code for a device of compute capability major.minor: a CUBIN when this NVRTC knows the
    /// architecture, else PTX for the newest one it knows (the driver JIT-compiles it forward).</summary>
    internal static (byte[] Image, KernelOrigin Origin) CompileForDevice(string module, int major, int minor)
    {
        int sm = major * 10 + minor;
        var supported = Nvrtc.SupportedArchitectures();
        bool native = supported.Contains(sm);
        int target = native ? sm : supported.Where(a => a <= sm).DefaultIfEmpty(supported.Min()).Max();
        var architecture = native ? $"sm_{target}" : $"compute_{target}";
        var options = Options(architecture);
        var source = KernelSources.Source(module);
        var (nvrtcMajor, nvrtcMinor) = Nvrtc.Version();

        var key = CacheKey(module, source, options, $"{nvrtcMajor}.{nvrtcMinor}");
        var cacheFile = Path.Combine(CacheFolder, $"{module}-{key}.{(native ? "cubin" : "ptx")}");
        if (TryRead(cacheFile) is { } cached) return (cached, KernelOrigin.NvrtcDiskCache);

        var image = Nvrtc.Compile($"{module}.cu", source, KernelSources.Headers, options, native ? Nvrtc.Output.Cubin : Nvrtc.Output.Ptx);
        TryWrite(cacheFile, image);
        return (image, KernelOrigin.NvrtcCompiled);
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

    // The cache is an optimization: an unwritable folder only costs a recompile next time.
    private static void TryWrite(string file, byte[] image)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var temporary = $"{file}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temporary, image);
            File.Move(temporary, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
