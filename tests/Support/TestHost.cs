// Where the test run is, for tests that start programs or read files beside the tests: the folder above the
// test assembly that holds a given file (the source tree, or the unpacked GPU bundle, which ships the files
// such tests need), and the .NET host that can run an assembly. The bundle has a .NET runtime but no SDK and
// no `dotnet` on PATH, so a test must start the host that runs it (or $DOTNET_ROOT/dotnet), never a bare
// `dotnet`; tests skip with the reason when either is missing.
namespace SimClr.Tests;

internal static class TestHost
{
    /// <summary>The nearest folder at or above <paramref name="start"/> (default: the test assembly's folder)
    /// that holds <paramref name="relativePath"/>, or null.</summary>
    public static string? FolderHolding(string relativePath, string? start = null)
    {
        for (var d = new DirectoryInfo(start ?? AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relativePath))) return d.FullName;
        return null;
    }

    /// <summary>The .NET host: the running process when it is one (`dotnet SimClr.Tests.dll`, as the bundle runs
    /// the tests), else $DOTNET_ROOT/dotnet, else `dotnet` in a folder of <paramref name="path"/> ($PATH); null when
    /// there is none.</summary>
    public static string? Dotnet(string? processPath = null, string? dotnetRoot = null, string? path = null)
    {
        processPath ??= Environment.ProcessPath;
        if (processPath is not null && Path.GetFileName(processPath) == "dotnet" && File.Exists(processPath)) return processPath;
        dotnetRoot ??= Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(dotnetRoot) && File.Exists(Path.Combine(dotnetRoot, "dotnet"))) return Path.Combine(dotnetRoot, "dotnet");
        foreach (var dir in (path ?? Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, "dotnet"))) return Path.Combine(dir, "dotnet");
        return null;
    }

    /// <summary>The command that runs the managed program <paramref name="assemblyPath"/>: the host and the
    /// assembly, or null without a host.</summary>
    public static (string FileName, string[] Arguments)? Command(string assemblyPath) =>
        Dotnet() is { } host ? (host, [assemblyPath]) : null;
}
