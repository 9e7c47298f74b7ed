// The ABI facts the MPI and NCCL bindings rely on, pinned without a GPU. MPI: the error classes and thread levels
// against the #defines and enum of the installed mpi.h (Debian's libopenmpi-dev, Open MPI 4.1), every global the
// binding reads as a predefined handle declared there with the struct type Open MPI uses, and every import and
// global exported by the installed libmpi.so.40. NCCL: the enums and the unique id's size against nccl.h
// (NVIDIA/nccl src/nccl.h.in, 2.2x: ncclResult_t up to ncclTimeout = 8, ncclDataType_t, ncclRedOp_t,
// NCCL_UNIQUE_ID_BYTES 128); its imports are checked against a real libnccl where one is installed.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda.Native;
using SimClr.Kernels.Distributed.Native;

namespace SimClr.Tests.Distributed;

public partial class DistributedAbiTests
{
    private const string MpiHeader = "/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h";

    private static string RequireMpiHeader()
    {
        if (File.Exists(MpiHeader)) return File.ReadAllText(MpiHeader);
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))) Assert.Fail($"CI installs libopenmpi-dev, but {MpiHeader} is missing");
        Assert.Skip($"{MpiHeader} is not installed (Debian: libopenmpi-dev)");
        return "";
    }

    private static nint RequireMpiLibrary()
    {
        try { Mpi.Load(); }
        catch (MpiNotAvailableException e)
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"))) Assert.Fail($"CI installs Open MPI, but: {e.Message}");
            Assert.Skip(e.Message);
        }
        return NativeLibrary.Load(Mpi.LoadedFrom!);
    }

    [GeneratedRegex(@"^#define\s+MPI_ERR_(\w+)\s+(\d+)", RegexOptions.Multiline)]
    private static partial Regex ErrorDefine();

    [Fact]
    public void MpiErrorClassesAndThreadLevelsMatchMpiH()
    {
        var header = RequireMpiHeader();
        var defines = ErrorDefine().Matches(header).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        Assert.Matches(@"#define\s+MPI_SUCCESS\s+0\b", header);
        foreach (var error in Enum.GetValues<MpiError>().Where(e => e != MpiError.Success))
        {
            var name = Mpi.ErrorName(error)["MPI_ERR_".Length..];
            Assert.True(defines.TryGetValue(name, out int value), $"mpi.h has no MPI_ERR_{name}");
            Assert.Equal(value, (int)error);
        }
        // enum { MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED, MPI_THREAD_SERIALIZED, MPI_THREAD_MULTIPLE }
        Assert.Matches(@"enum\s*\{\s*MPI_THREAD_SINGLE,\s*MPI_THREAD_FUNNELED,\s*MPI_THREAD_SERIALIZED,\s*MPI_THREAD_MULTIPLE\s*\}", header);
        Assert.Equal([0, 1, 2, 3], Enum.GetValues<MpiThreadLevel>().Select(v => (int)v));
        Assert.Matches(@"#define\s+MPI_IN_PLACE\s+\(\(void \*\) 1\)", header);
        Assert.Equal(1, (int)Mpi.InPlace);
    }

    [Fact]
    public void MpiPredefinedHandlesAreTheGlobalsMpiHDefinesThemAs()
    {
        var header = RequireMpiHeader();
        // MPI_COMM_WORLD is OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world), i.e. &ompi_mpi_comm_world, and so on.
        var expected = new (string Macro, string Type, string Global, string Struct)[]
        {
            ("MPI_COMM_WORLD", "MPI_Comm", "ompi_mpi_comm_world", "ompi_predefined_communicator_t"),
            ("MPI_FLOAT", "MPI_Datatype", "ompi_mpi_float", "ompi_predefined_datatype_t"),
            ("MPI_DOUBLE", "MPI_Datatype", "ompi_mpi_double", "ompi_predefined_datatype_t"),
            ("MPI_INT", "MPI_Datatype", "ompi_mpi_int", "ompi_predefined_datatype_t"),
            ("MPI_INT64_T", "MPI_Datatype", "ompi_mpi_int64_t", "ompi_predefined_datatype_t"),
            ("MPI_BYTE", "MPI_Datatype", "ompi_mpi_byte", "ompi_predefined_datatype_t"),
            ("MPI_SUM", "MPI_Op", "ompi_mpi_op_sum", "ompi_predefined_op_t"),
            ("MPI_ERRORS_RETURN", "MPI_Errhandler", "ompi_mpi_errors_return", "ompi_predefined_errhandler_t"),
        };
        foreach (var (macro, type, global, structName) in expected)
        {
            Assert.Matches($@"#define\s+{macro}\s+OMPI_PREDEFINED_GLOBAL\(\s*{type},\s*{global}\)", header);
            Assert.Matches($@"extern\s+struct\s+{structName}\s+{global};", header);
        }
        // The handle types are pointers (so nint carries them).
        foreach (var (type, structName) in new[] { ("MPI_Comm", "ompi_communicator_t"), ("MPI_Datatype", "ompi_datatype_t"), ("MPI_Op", "ompi_op_t"), ("MPI_Errhandler", "ompi_errhandler_t") })
            Assert.Matches($@"typedef\s+struct\s+{structName}\s+\*{type};", header);
    }

    [Fact]
    public void EveryMpiImportAndGlobalIsExportedByTheInstalledLibrary()
    {
        var handle = RequireMpiLibrary();
        var imports = Imports(typeof(Mpi), Mpi.LibraryName);
        Assert.Contains("MPI_Allreduce", imports);
        var globals = new[] { "ompi_mpi_comm_world", "ompi_mpi_float", "ompi_mpi_double", "ompi_mpi_int", "ompi_mpi_int64_t", "ompi_mpi_byte", "ompi_mpi_op_sum", "ompi_mpi_errors_return" };
        var missing = imports.Concat(globals).Where(i => !NativeLibrary.TryGetExport(handle, i, out _)).ToList();
        Assert.True(missing.Count == 0, $"{Mpi.LoadedFrom} does not export: {string.Join(", ", missing)}");
        Assert.StartsWith("Open MPI v", Mpi.LibraryVersion());
    }

    [Fact]
    public void NcclEnumsAndUniqueIdMatchNcclH()
    {
        Assert.Equal(128, Nccl.UniqueIdBytes);
        Assert.Equal(128, Marshal.SizeOf<NcclUniqueId>());
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 8], Enum.GetValues<NcclResult>().Select(v => (int)v));
        Assert.Equal(0, (int)NcclDataType.Int8);
        Assert.Equal(1, (int)NcclDataType.Uint8);
        Assert.Equal(2, (int)NcclDataType.Int32);
        Assert.Equal(4, (int)NcclDataType.Int64);
        Assert.Equal(7, (int)NcclDataType.Float32);
        Assert.Equal(8, (int)NcclDataType.Float64);
        Assert.Equal(9, (int)NcclDataType.Bfloat16);
        Assert.Equal(0, (int)NcclRedOp.Sum);
        Assert.Equal(4, (int)NcclRedOp.Avg);
        Assert.Equal(NcclDataType.Float32, Nccl.DataType<float>());
        Assert.Equal(NcclDataType.Float64, Nccl.DataType<double>());
        Assert.Equal(NcclDataType.Uint8, Nccl.DataType<byte>());
        Assert.Equal(NcclDataType.Int64, Nccl.DataType<long>());
        Assert.Throws<ArgumentException>(() => Nccl.DataType<short>());
        Assert.Equal(["libnccl.so.2"], NativeLibraries.Candidates(CudaLibrary.Nccl));
    }

    [Fact]
    public void NcclLoadsWhereItIsInstalledAndExportsEveryImport()
    {
        LoadedLibrary loaded;
        try { loaded = Nccl.Load(); }
        catch (CudaNotAvailableException e) { Assert.Skip($"NCCL is not installed: {e.Message}"); return; }
        var missing = Imports(typeof(Nccl), null).Where(i => !NativeLibrary.TryGetExport(loaded.Handle, i, out _)).ToList();
        Assert.True(missing.Count == 0, $"{loaded.Path} does not export: {string.Join(", ", missing)}");
        Assert.True(Nccl.LibraryVersion() >= new Version(2, 0), $"NCCL {Nccl.LibraryVersion()}");
    }

    [Fact]
    public void AMissingNcclSaysWhereItLooked()
    {
        var e = Assert.Throws<CudaNotAvailableException>(() =>
            NativeLibraries.Load(CudaLibrary.Nccl, ["libnccl-absent.so.2"], new NativeLibraries.SearchPlan(["/nonexistent/a"], ["/nonexistent/b"])));
        Assert.Contains("NCCL (libnccl) not found: tried libnccl-absent.so.2 in /nonexistent/a", e.Message);
        Assert.Contains(NativeLibraries.PathVariable, e.Message);
    }

    private static List<string> Imports(Type binding, string? library) =>
        [.. binding.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LibraryImportAttribute>()))
            .Where(x => x.Attribute is not null && (library is null || x.Attribute.LibraryName == library))
            .Select(x => x.Attribute!.EntryPoint ?? x.Method.Name)
            .Distinct()];
}
