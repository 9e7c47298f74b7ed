// NVRTC (libnvrtc.so.13/12/11.2): raw imports, nvrtcResult, NvrtcException (which carries the compile log)
// and a Program wrapper that compiles one source with named headers and returns PTX or CUBIN.
// NVRTC needs no GPU, so this file is exercised by tests on every machine that has the library.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace SimClr.Kernels.Cuda.Native;

/// <summary>nvrtcResult (nvrtc.h).</summary>
public enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>An NVRTC call failed; for a compilation error <see cref="Log"/> holds the compiler output.</summary>
public sealed class NvrtcException(NvrtcResult status, string statusName, string nativeMessage, string call, string log = "")
    : NativeCallException("NVRTC", statusName, (int)status, log.Length > 0 ? $"{nativeMessage}\n{log}" : nativeMessage, call)
{
    public NvrtcResult Status { get; } = status;
    public string Log { get; } = log;
}

public static unsafe partial class Nvrtc
{
    static Nvrtc() => NativeLibraries.EnsureResolver();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(NvrtcResult status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != NvrtcResult.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(NvrtcResult status, string call) => throw new NvrtcException(status, StatusName(status), Message(status), call);

    public static string StatusName(NvrtcResult status) =>
        Enum.IsDefined(status) ? $"NVRTC_ERROR_{ToUpperSnake(status.ToString())}".Replace("NVRTC_ERROR_SUCCESS", "NVRTC_SUCCESS") : $"nvrtcResult {(int)status}";

    private static string Message(NvrtcResult status)
    {
        if (!NativeLibraries.IsLoaded(CudaLibrary.Nvrtc)) return "no message (libnvrtc is not loaded)";
        return Marshal.PtrToStringUTF8(nvrtcGetErrorString(status)) ?? "";
    }

    internal static string ToUpperSnake(string pascal)
    {
        var sb = new StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(pascal[i]));
        }
        return sb.ToString();
    }

    // ---- raw imports ------------------------------------------------------------------------------
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial nint nvrtcGetErrorString(NvrtcResult result);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcVersion(int* major, int* minor);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetNumSupportedArchs(int* count);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetSupportedArchs(int* archs);
    [LibraryImport(NativeLibraries.NvrtcName)]
    internal static partial NvrtcResult nvrtcCreateProgram(nint* program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcDestroyProgram(nint* program);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetProgramLogSize(nint program, nuint* size);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetPTXSize(nint program, nuint* size);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetCUBINSize(nint program, nuint* size);
    [LibraryImport(NativeLibraries.NvrtcName)] internal static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);

    // ---- thin calls ---------------------------------------------------------------------------------
    /// <summary>Loads libnvrtc; throws CudaNotAvailableException when it is absent.</summary>
    public static LoadedLibrary Load() => NativeLibraries.Require(CudaLibrary.Nvrtc);

    public static (int Major, int Minor) Version()
    {
        Load();
        int major, minor;
        Check(nvrtcVersion(&major, &minor));
        return (major, minor);
    }

    /// <summary>The SM numbers this NVRTC can compile for (e.g. 80 for sm_80).</summary>
    public static int[] SupportedArchitectures()
    {
        Load();
        int n;
        Check(nvrtcGetNumSupportedArchs(&n));
        var archs = new int[n];
        fixed (int* p = archs) Check(nvrtcGetSupportedArchs(p));
        return archs;
    }

    /// <summary>What a compilation produces.</summary>
    public enum Output { Ptx, Cubin }

    /// <summary>Compiles <paramref name="source"/> with <paramref name="headers"/> (include name → text) and returns
    /// the PTX (NUL-terminated, ready for cuModuleLoadData) or the CUBIN. A compile error throws NvrtcException with the log.</summary>
    public static byte[] Compile(string name, string source, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> options, Output output)
    {
        Load();
        using var strings = new Utf8Strings();
        var headerNames = headers.Keys.Order(StringComparer.Ordinal).ToArray();
        byte** headerText = strings.Array(headerNames.Select(h => headers[h]));
        byte** includeNames = strings.Array(headerNames);
        byte** optionText = strings.Array(options);

        nint program;
        Check(nvrtcCreateProgram(&program, strings.One(source), strings.One(name), headerNames.Length, headerText, includeNames));
        try
        {
            var status = nvrtcCompileProgram(program, options.Count, optionText);
            if (status != NvrtcResult.Success)
                throw new NvrtcException(status, StatusName(status), $"compiling {name} with {string.Join(' ', options)} failed", "nvrtcCompileProgram(program, options)", ProgramLog(program));
            nuint size;
            if (output == Output.Ptx)
            {
                Check(nvrtcGetPTXSize(program, &size));
                var ptx = new byte[size];
                fixed (byte* p = ptx) Check(nvrtcGetPTX(program, p));
                return ptx;
            }
            Check(nvrtcGetCUBINSize(program, &size));
            var cubin = new byte[size];
            fixed (byte* p = cubin) Check(nvrtcGetCUBIN(program, p));
            return cubin;
        }
        finally
        {
            nvrtcDestroyProgram(&program);
        }
    }

    private static string ProgramLog(nint program)
    {
        nuint size;
        if (nvrtcGetProgramLogSize(program, &size) != NvrtcResult.Success || size <= 1) return "";
        var log = new byte[size];
        fixed (byte* p = log)
        {
            if (nvrtcGetProgramLog(program, p) != NvrtcResult.Success) return "";
        }
        return Encoding.UTF8.GetString(log, 0, (int)size - 1).TrimEnd();
    }

    /// <summary>NUL-terminated UTF-8 copies in unmanaged memory for the duration of one call.</summary>
    private sealed class Utf8Strings : IDisposable
    {
        private readonly List<nint> _blocks = [];

        public byte* One(string text)
        {
            var p = (nint)Marshal.StringToCoTaskMemUTF8(text);
            _blocks.Add(p);
            return (byte*)p;
        }

        public byte** Array(IEnumerable<string> texts)
        {
            var list = texts.ToList();
            var block = Marshal.AllocCoTaskMem(Math.Max(1, list.Count) * sizeof(nint));
            _blocks.Add(block);
            var array = (byte**)block;
            for (int i = 0; i < list.Count; i++) array[i] = One(list[i]);
            return array;
        }

        public void Dispose()
        {
            foreach (var p in _blocks) Marshal.FreeCoTaskMem(p);
            _blocks.Clear();
        }
    }
}
