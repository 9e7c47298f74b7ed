// The argument arrays in CudaBackend.Kernels.cs and CudaBackend.SyncBatchNorm.cs against the kernels' real
// parameter lists, without a GPU.
// cuLaunchKernel takes `void** args` on trust: a missing, extra or swapped argument would only show up as
// garbage or an illegal address on a device. This test reads each `stackalloc void*[] { &a, &b, … }` in the
// launcher source, resolves every local's C# type from its declaration in the launching method (nint and
// long are 8 bytes, int is a 32-bit integer, float a 32-bit float), and compares them one by one with the
// `.param` list that NVRTC emits for the launched entry point (.u64/.s64, .u32/.s32, .f32).
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda;

namespace SimClr.Tests.Cuda.Kernels;

[Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
public partial class LaunchArgumentTests
{
    [GeneratedRegex(@"void\*\*\s+(\w+)\s*=\s*stackalloc\s+void\*\[\]\s*\{([^}]*)\};")]
    private static partial Regex ArgumentArray();

    [GeneratedRegex(@"Launch\(Kernel\(ref _\w+\.\w+,\s*""(\w+)"",\s*""(\w+)""\),[^;]*?,\s*(\w+)\);")]
    private static partial Regex LaunchCall();

    [GeneratedRegex(@"(?:public|private|internal) unsafe void \w+\(")]
    private static partial Regex MethodStart();

    [GeneratedRegex(@"\b(nint|long|int|float|uint)\s+(\w+)\s*(?==|,|\))")]
    private static partial Regex TypedName();

    [GeneratedRegex(@"var\s*\(([^)]*)\)\s*=\s*KernelGrids\.\w+")]
    private static partial Regex IntTuple();

    private enum Kind { Wide, Int32, Float32 }

    /// <summary>The launcher files and the fewest launches each must hold (one per kernel entry point).</summary>
    public static TheoryData<string, int> Launchers() => new() { { "CudaBackend.Kernels.cs", 26 }, { "CudaBackend.SyncBatchNorm.cs", 4 } };

    [Theory]
    [MemberData(nameof(Launchers))]
    public void EveryLaunchPassesTheKernelsParameterList(string file, int expectedLaunches)
    {
        NvrtcCompileTests.RequireNvrtc();
        var source = File.ReadAllText(LauncherSource(file));
        var ptxByModule = new Dictionary<string, string>();
        int launches = 0;
        foreach (Match launch in LaunchCall().Matches(source))
        {
            string module = launch.Groups[1].Value, entry = launch.Groups[2].Value, arrayName = launch.Groups[3].Value;
            int methodStart = MethodStart().Matches(source[..launch.Index]).Last().Index;
            var method = source[methodStart..launch.Index];
            var array = ArgumentArray().Matches(method).Last(m => m.Groups[1].Value == arrayName);
            var names = array.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(a => a.TrimStart('&')).ToArray();
            var types = LocalKinds(method[..array.Index]);

            if (!ptxByModule.TryGetValue(module, out var ptx)) ptxByModule[module] = ptx = NvrtcCompiler.Compile(module, "compute_80");
            var parameters = PtxParameters(ptx, entry);

            Assert.True(names.Length == parameters.Length, $"{entry}: the launcher passes {names.Length} arguments ({string.Join(", ", names)}) but the kernel takes {parameters.Length}");
            for (int i = 0; i < names.Length; i++)
            {
                Assert.True(types.TryGetValue(names[i], out var kind), $"{entry}: cannot find the declaration of argument '{names[i]}'");
                Assert.True(kind == parameters[i], $"{entry}: argument {i} '{names[i]}' is {kind} but the kernel's parameter {i} is {parameters[i]}");
            }
            launches++;
        }
        // Every launcher in the file was seen (one Launch per kernel entry point).
        Assert.Equal(Regex.Matches(source, @"Launch\(Kernel\(").Count, launches);
        Assert.True(launches >= expectedLaunches, $"only {launches} launches found in {file}");
    }

    private static Dictionary<string, Kind> LocalKinds(string method)
    {
        var kinds = new Dictionary<string, Kind>();
        // Declarations like "nint a = …, b = …;" name several locals of one type.
        foreach (var statement in method.Split(';', '{'))
        {
            var first = TypedName().Match(statement);
            if (!first.Success) continue;
            var kind = ToKind(first.Groups[1].Value);
            var declaration = statement[first.Index..];
            foreach (var name in TopLevelNames(declaration)) kinds[name] = kind;
        }
        // Method parameters ("int m, int n, int dim").
        foreach (Match m in TypedName().Matches(method[..(method.IndexOf(')') + 1)]))
            kinds[m.Groups[2].Value] = ToKind(m.Groups[1].Value);
        foreach (Match m in IntTuple().Matches(method))
            foreach (var name in m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries))
                kinds[name] = Kind.Int32;
        return kinds;
    }

    /// <summary>The names declared at parenthesis depth 0 of "type a = …, b = …".</summary>
    private static IEnumerable<string> TopLevelNames(string declaration)
    {
        int depth = 0, start = declaration.IndexOf(' ') + 1;
        for (int i = start; i <= declaration.Length; i++)
        {
            char c = i < declaration.Length ? declaration[i] : ',';
            if (c is '(' or '[') depth++;
            else if (c is ')' or ']') depth--;
            else if (c == ',' && depth == 0)
            {
                var part = declaration[start..i];
                var name = part.Split('=')[0].Trim();
                if (Regex.IsMatch(name, @"^\w+$")) yield return name;
                start = i + 1;
            }
        }
    }

    private static Kind ToKind(string type) => type switch
    {
        "nint" or "long" => Kind.Wide,
        "int" or "uint" => Kind.Int32,
        "float" => Kind.Float32,
        _ => throw new ArgumentException(type),
    };

    private static Kind[] PtxParameters(string ptx, string entry)
    {
        var m = Regex.Match(ptx, $@"\.entry\s+{entry}\s*\(([^)]*)\)");
        Assert.True(m.Success, $"no .entry {entry} in the PTX");
        return Regex.Matches(m.Groups[1].Value, @"\.param\s+\.(\w+)").Select(p => p.Groups[1].Value switch
        {
            "u64" or "s64" or "b64" => Kind.Wide,
            "u32" or "s32" or "b32" => Kind.Int32,
            "f32" => Kind.Float32,
            var other => throw new Xunit.Sdk.XunitException($"{entry}: unexpected parameter type .{other}"),
        }).ToArray();
    }

    private static string LauncherSource(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Kernels", "Cuda", file);
            if (File.Exists(candidate)) return candidate;
        }
        Assert.Skip($"the source tree (src/Kernels/Cuda/{file}) is not above {AppContext.BaseDirectory}");
        return "";
    }
}
