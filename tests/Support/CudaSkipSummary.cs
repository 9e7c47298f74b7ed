// How a machine without CUDA reports the CUDA tests: as one skipped entry per test class ("CudaLibraryOpsTests
// (35 CUDA tests)" with the reason), not one three-line skip notice per test case. The runner prints a block
// for every skipped result and has no switch to hide them, so the grouping happens at discovery: a test
// framework that wraps xunit's own and, when CudaInfo.Probe says CUDA cannot be used, replaces the test cases
// of a class that carry [Trait("Requires", "CUDA")] by one skipped case naming how many there are. Nothing
// is grouped where CUDA is usable or under SIMCLR_REQUIRE_CUDA=1 (which turns would-be skips into failures),
// so every CUDA test then runs and reports on its own.
using System.Reflection;
using SimClr.Kernels.Cuda;
using SimClr.Tests.Cuda;
using SimClr.Training.Cli;
using Xunit.Sdk;
using Xunit.v3;

[assembly: TestFramework(typeof(SimClr.Tests.Support.CudaSkipSummaryFramework))]

namespace SimClr.Tests.Support;

public sealed class CudaSkipSummaryFramework : XunitTestFramework
{
    /// <summary>xunit's own discoverer describes the assembly (name, path, target framework, unique ID); the
    /// grouping discoverer takes over that description and is otherwise xunit's.</summary>
    protected override ITestFrameworkDiscoverer CreateDiscoverer(Assembly assembly)
    {
        var standard = (XunitTestFrameworkDiscoverer)base.CreateDiscoverer(assembly);
        DisposalTracker.Add(standard);
        return new CudaSkipSummaryDiscoverer(standard.TestAssembly);
    }
}

internal sealed class CudaSkipSummaryDiscoverer(IXunitTestAssembly assembly) : XunitTestFrameworkDiscoverer(assembly)
{
    /// <summary>Why the CUDA tests cannot run here, or null when they run (CUDA usable, or required).</summary>
    internal static readonly Lazy<string?> GroupReason = new(() =>
    {
        if (Environment.GetEnvironmentVariable(CudaTestSupport.RequireVariable) == "1") return null;
        var info = CudaInfo.Probe();
        return info.Available ? null : BackendFactory.CudaVerdict(info);
    });

    public static bool NeedsCuda(ITestCase testCase) =>
        testCase.Traits.TryGetValue(CudaTestSupport.Requires, out var values) && values.Contains(CudaTestSupport.Cuda);

    protected override async ValueTask<bool> FindTestsForType(IXunitTestClass testClass, ITestFrameworkDiscoveryOptions options,
        Func<ITestCase, ValueTask<bool>> discoveryCallback)
    {
        if (GroupReason.Value is not { } reason) return await base.FindTestsForType(testClass, options, discoveryCallback);
        var grouped = new List<IXunitTestCase>();
        bool go = await base.FindTestsForType(testClass, options, testCase =>
        {
            if (testCase is IXunitTestCase xunitCase && NeedsCuda(testCase))
            {
                grouped.Add(xunitCase);
                return new ValueTask<bool>(true);
            }
            return discoveryCallback(testCase);
        });
        if (grouped.Count == 0) return go;
        var first = grouped[0];
        var summary = new XunitTestCase(first.TestMethod, $"{testClass.TestClassName} ({grouped.Count} CUDA test{(grouped.Count == 1 ? "" : "s")})",
            $"{first.UniqueID}:cuda-group", @explicit: false, skipExceptions: null,
            skipReason: $"{reason} (SIMCLR_REQUIRE_CUDA=1 runs each test on its own)", skipType: null, skipUnless: null, skipWhen: null,
            traits: first.Traits.ToDictionary(t => t.Key, t => t.Value.ToHashSet()), testMethodArguments: null,
            sourceFilePath: first.SourceFilePath, sourceLineNumber: first.SourceLineNumber, timeout: null);
        foreach (var testCase in grouped)
            if (testCase is IAsyncDisposable d) await d.DisposeAsync();
        return go && await discoveryCallback(summary);
    }
}
