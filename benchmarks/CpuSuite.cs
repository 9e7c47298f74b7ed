// The CPU suite: the reference backend's GEMM, convolution passes, augmentation twin, NT-Xent, cosine
// similarity, LARS, element-wise ops and a whole SimCLR step on a small ResNet, timed with Stopwatch
// against a roofline measured on this machine (FMA throughput, STREAM-like bandwidth). --smoke runs one tiny
// size of each so CI can check the suite end to end in seconds.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Layers;

namespace SimClr.Benchmarks;

public static class CpuSuite
{
    public static SuiteReport Run(BenchOptions options)
    {
        bool smoke = options.Sizes == SizeSet.Smoke;
        using var backend = new CpuBackend<float>();
        var clock = new StopwatchClock();
        var report = new SuiteReport
        {
            Suite = "cpu", Sizes = options.Sizes.ToString().ToLowerInvariant(),
            Device = backend.Info.Description, Clock = clock.Name, AutosavePath = options.JsonPath,
        };
        Console.Error.WriteLine("measuring the CPU roofline ...");
        report.Roofline = CpuRoofline.Measure(options.Sizes);
        report.Notes.Add("memory column: the bytes of the buffers the benchmark allocates (ops never allocate)");

        SuiteRunner.RunCases(report, backend, clock, smoke ? SmokeCases() : FullCases(), options, "host buffers");
        StepBenchmarks.RunCpu(report, backend, clock, options);
        return report;
    }

    private static IEnumerable<OpCase> SmokeCases()
    {
        yield return OpCases.Gemm("sq64", 64, 64, 64);
        yield return OpCases.Gemm("im2col.tiny", 16, 256, 144);
        var conv = new Conv2dShape(2, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1);
        foreach (var pass in Enum.GetValues<OpCases.ConvPass>()) yield return OpCases.Conv("tiny3x3", conv, pass);
        yield return OpCases.Augment("cifar", 16, 32, AugmentSpec.Cifar(32));
        yield return OpCases.NtXent(64, 32);
        yield return OpCases.Cosine(64, 64, 32);
        yield return OpCases.Lars("resnet18-w0.125", Models.Segments(ResNetArch.ResNet18, StemKind.Cifar, 0.125));
        yield return OpCases.ElementwiseOp(OpCases.Elementwise.Axpy, 1 << 16);
        yield return OpCases.ElementwiseOp(OpCases.Elementwise.ReluForward, 1 << 16);
    }

    private static IEnumerable<OpCase> FullCases()
    {
        yield return OpCases.Gemm("sq256", 256, 256, 256);
        yield return OpCases.Gemm("sq512", 512, 512, 512);
        yield return OpCases.Gemm("sq512.nt", 512, 512, 512, Transpose.None, Transpose.Transposed);
        // Convolution-shaped: the im2col products of ResNet-18 (CIFAR stem) layer1 and layer4 at batch 8,
        // and the projection head's first linear over 2·256 views.
        yield return OpCases.Gemm("im2col.layer1", 64, 8 * 32 * 32, 64 * 9);
        yield return OpCases.Gemm("im2col.layer4", 512, 8 * 4 * 4, 512 * 9);
        yield return OpCases.Gemm("linear.head", 512, 512, 512, Transpose.None, Transpose.Transposed);

        // ResNet-18 (CIFAR stem) layers at batch 8, and the ImageNet stem at batch 2.
        var layers = new (string Label, Conv2dShape Shape)[]
        {
            ("r18c.stem", new Conv2dShape(8, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1)),
            ("r18c.layer1", new Conv2dShape(8, 64, 32, 32, 64, 3, 3, 1, 1, 1, 1)),
            ("r18c.layer2.down3x3", new Conv2dShape(8, 64, 32, 32, 128, 3, 3, 2, 2, 1, 1)),
            ("r18c.layer3.down1x1", new Conv2dShape(8, 128, 16, 16, 256, 1, 1, 2, 2, 0, 0)),
            ("r18c.layer4", new Conv2dShape(8, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1)),
            ("imagenet.stem7x7", new Conv2dShape(2, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3)),
        };
        foreach (var (label, shape) in layers)
            foreach (var pass in Enum.GetValues<OpCases.ConvPass>())
                yield return OpCases.Conv(label, shape, pass);

        yield return OpCases.Augment("cifar", 512, 32, AugmentSpec.Cifar(32));
        yield return OpCases.Augment("imagenet", 32, 256, AugmentSpec.Paper(224));
        yield return OpCases.NtXentForward(1024, 128);
        yield return OpCases.NtXent(1024, 128);
        yield return OpCases.NtXent(2048, 128);
        yield return OpCases.Cosine(1024, 1024, 128);
        yield return OpCases.Lars("resnet18", Models.Segments(ResNetArch.ResNet18, StemKind.Cifar));
        yield return OpCases.Lars("resnet50", Models.Segments(ResNetArch.ResNet50, StemKind.ImageNet));
        foreach (var op in new[] { OpCases.Elementwise.Copy, OpCases.Elementwise.Axpy, OpCases.Elementwise.ReluForward, OpCases.Elementwise.ReluBackward })
            yield return OpCases.ElementwiseOp(op, 1 << 24);
    }
}
