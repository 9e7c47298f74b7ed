// kernels/augment.cu against the CPU twin, ≤ 1e-4 per pixel (in [0, 1] pixel units, i.e. after undoing
// the normalization): on a GPU through CudaBackend, and everywhere g++ exists through the host emulation
// in HostEmulation/augment_emu.cpp, which runs the same kernel source with real barriers and shuffles.
using System.Diagnostics;
using System.Runtime.InteropServices;
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Tests.Cuda;
using static SimClr.Tests.Augmentation.AugmentHarness;

namespace SimClr.Tests.Augmentation;

public sealed record AugmentCase(string Name, ImageSetShape Set, int[] Indices, AugmentSpec Spec, AugmentKey Key, int Threads)
{
    public override string ToString() => Name;

    public static IEnumerable<AugmentCase> Emulated()
    {
        yield return new("cifar-32", new(16, 32, 32, 3), [3, 0, 15, 7, 7, 9, 1, 12], AugmentSpec.Cifar(32), new(42, 1, 0), 256);
        yield return new("paper-forced-odd-gray-source", new(5, 37, 29, 1), [4, 0, 2, 1, 3, 4],
            AugmentSpec.Paper(19) with { OutWidth = 23, JitterProbability = 1, GrayscaleProbability = 0.3f, BlurProbability = 1 }, new(7, 3, 1), 64);
        yield return new("paper-96-to-64-blur", new(4, 96, 96, 3), [0, 1, 2, 3],
            AugmentSpec.Paper(64) with { BlurProbability = 1, JitterProbability = 1 }, new(99, 0, 1), 128);
        yield return new("tiny-5x7-to-9x11", new(3, 5, 7, 3), [2, 1, 0, 2],
            AugmentSpec.Paper(9) with { OutWidth = 11, BlurProbability = 1, JitterProbability = 1, GrayscaleProbability = 0.5f }, new(1, 0, 0), 32);
    }

    public static IEnumerable<AugmentCase> OnDevice()
    {
        foreach (var c in Emulated()) yield return c with { Threads = 256 };
        yield return new("cifar-512", new(600, 32, 32, 3), Enumerable.Range(0, 512).Select(i => (i * 7) % 600).ToArray(), AugmentSpec.Paper(32) with { BlurProbability = 0.5f }, new(5, 2, 1), 256);
        yield return new("imagenet-224", new(8, 250, 300, 3), [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7], AugmentSpec.Paper(224), new(11, 4, 0), 256);
        yield return new("fashion-28", new(50, 28, 28, 1), Enumerable.Range(0, 50).ToArray(), AugmentSpec.Paper(28), new(3, 0, 1), 256);
    }

    /// <summary>Worst |GPU − CPU| over all pixels in [0, 1] units.</summary>
    public static double WorstPixelError(float[] got, float[] want, in AugmentSpec spec)
    {
        Assert.Equal(want.Length, got.Length);
        int plane = spec.OutHeight * spec.OutWidth;
        double worst = 0;
        for (int i = 0; i < want.Length; i++)
        {
            int c = i / plane % 3;
            float std = c == 0 ? spec.StdR : c == 1 ? spec.StdG : spec.StdB;
            double e = Math.Abs((double)got[i] - want[i]) * std;
            if (!(e <= worst)) worst = e;
        }
        return worst;
    }
}

public class AugmentKernelEmulationTests
{
    private static readonly Lazy<(string? Exe, string? Reason)> Emulator = new(Build);

    private static (string?, string?) Build()
    {
        string? root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "kernels", "augment.cu"))) root = Path.GetDirectoryName(root);
        if (root is null) return (null, $"kernels/augment.cu not found above {AppContext.BaseDirectory}");
        string driver = Path.Combine(root, "tests", "Augmentation", "HostEmulation", "augment_emu.cpp");
        string exe = Path.Combine(Path.GetTempPath(), $"simclr-augment-emu-{Environment.ProcessId}");
        try
        {
            var (code, output) = RunProcess("g++", ["-std=c++20", "-O1", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-function", "-pthread", "-o", exe, driver]);
            Assert.True(code == 0, $"g++ failed on {driver}:\n{output}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"g++ is not available ({e.Message})");
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => File.Delete(exe);
        return (exe, null);
    }

    private static (int Code, string Output) RunProcess(string file, string[] args, bool reverse = false)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (reverse) psi.Environment["SIMCLR_EMU_REVERSE"] = "1";
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }

    /// <summary>The kernel's views; with <paramref name="reverse"/> the emulator runs a block's threads in
    /// decreasing order, so a missing barrier shows up in one of the two orders.</summary>
    private static float[] Emulate(string exe, AugmentCase c, byte[] images, bool reverse = false)
    {
        string input = Path.GetTempFileName(), output = Path.GetTempFileName();
        try
        {
            using (var f = File.Create(input))
            {
                var s = c.Set;
                var spec = c.Spec;
                f.Write(MemoryMarshal.AsBytes<int>([s.Count, s.Height, s.Width, s.Channels, c.Indices.Length, c.Threads]));
                f.Write(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref spec, 1)));
                f.Write(BitConverter.GetBytes(c.Key.Seed));
                f.Write(MemoryMarshal.AsBytes<int>([c.Key.Epoch, c.Key.View]));
                f.Write(images);
                f.Write(MemoryMarshal.AsBytes<int>(c.Indices));
            }
            var (code, log) = RunProcess(exe, [input, output], reverse);
            Assert.True(code == 0, $"augment_emu failed ({code}): {log}");
            return MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(output)).ToArray();
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    public static TheoryData<AugmentCase> Cases() => new(AugmentCase.Emulated());

    [Theory]
    [MemberData(nameof(Cases))]
    public void EmulatedKernelMatchesTheCpuTwin(AugmentCase c)
    {
        var (exe, reason) = Emulator.Value;
        if (exe is null) Assert.Skip(reason!);
        var images = RandomImages(c.Set, c.Set.Height * 31 + c.Set.Channels);
        var want = Run(new CpuBackend<float>(), images, c.Set, c.Indices, c.Spec, c.Key);
        foreach (bool reverse in new[] { false, true })
        {
            var got = Emulate(exe, c, images, reverse);
            double worst = AugmentCase.WorstPixelError(got, want, c.Spec);
            Assert.True(worst <= 1e-4, $"{c} ({(reverse ? "reverse" : "forward")} thread order): worst pixel error {worst:E2}");
        }
    }

    [Fact]
    public void EmulatedKernelWritesNaNForAnIndexOutsideTheSet()
    {
        var (exe, reason) = Emulator.Value;
        if (exe is null) Assert.Skip(reason!);
        var c = new AugmentCase("bad-index", new(2, 8, 8, 3), [1, 2], AugmentSpec.Cifar(8), new(1, 0, 0), 32);
        var got = Emulate(exe, c, RandomImages(c.Set, 1));
        Assert.All(got[..192], v => Assert.True(float.IsFinite(v)));
        Assert.All(got[192..], v => Assert.True(float.IsNaN(v)));
    }
}

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class AugmentCudaTests
{
    public static TheoryData<AugmentCase> Cases() => new(AugmentCase.OnDevice());

    [Theory]
    [MemberData(nameof(Cases))]
    public void CudaKernelMatchesTheCpuTwin(AugmentCase c)
    {
        var gpu = CudaTestSupport.Backend();
        var images = RandomImages(c.Set, c.Set.Height * 31 + c.Set.Channels);
        var want = Run(CudaTestSupport.CpuTwin, images, c.Set, c.Indices, c.Spec, c.Key);
        var got = Run(gpu, images, c.Set, c.Indices, c.Spec, c.Key);
        double worst = AugmentCase.WorstPixelError(got, want, c.Spec);
        Assert.True(worst <= 1e-4, $"{c}: worst pixel error {worst:E2}");
    }

    [Fact]
    public void RepeatedLaunchesAreBitwiseIdenticalAndDoNotAllocate()
    {
        var gpu = CudaTestSupport.Backend();
        var set = new ImageSetShape(64, 32, 32, 3);
        var spec = AugmentSpec.Paper(32);
        using var img = gpu.Allocate<byte>(set.Elements);
        using var idx = gpu.Allocate<int>(64);
        using var views = gpu.Allocate<float>(64 * 3 * 32 * 32);
        gpu.Upload(img.AsTensor(), RandomImages(set, 2));
        gpu.Upload(idx.AsTensor(), Enumerable.Range(0, 64).ToArray());
        gpu.AugmentViews(views.AsTensor(), img.AsTensor(), idx.AsTensor(), set, spec, new AugmentKey(1, 0, 0));
        var first = CudaTestSupport.Read(gpu, views.AsTensor());
        long allocations = gpu.AllocationCount;
        for (int i = 0; i < 3; i++) gpu.AugmentViews(views.AsTensor(), img.AsTensor(), idx.AsTensor(), set, spec, new AugmentKey(1, 0, 0));
        Assert.Equal(allocations, gpu.AllocationCount);
        Assert.Equal(first, CudaTestSupport.Read(gpu, views.AsTensor()));
    }
}
