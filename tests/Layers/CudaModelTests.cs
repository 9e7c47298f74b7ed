// The same SimClrModel<float> on the CUDA backend and on its CPU twin: identical initialization (drawn on the
// host from the seed), then one training step on the same views must give the same loss, every parameter
// gradient, the input gradient and the BN running statistics to fp32 accuracy, and EncodeFeatures must agree.
// This is the check that the layers run unchanged on the GPU. Skips without a CUDA device.
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using SimClr.Layers;
using SimClr.Tests.Cuda;
using static SimClr.Tests.Cuda.CudaTestSupport;

namespace SimClr.Tests.Layers;

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class CudaModelTests
{
    // Different summation orders (cuDNN/cuBLAS vs the CPU GEMM) through ~20 BN-normalized layers.
    private const double Tolerance = 2e-3;

    [Theory]
    [InlineData(ResNetArch.ResNet18, StemKind.Cifar, 9, 11)]
    [InlineData(ResNetArch.ResNet50, StemKind.ImageNet, 37, 35)]
    public void OneTrainingStepMatchesTheCpuTwin(ResNetArch arch, StemKind stem, int height, int width)
    {
        var gpu = Backend();
        var config = new SimClrModelConfig
        {
            Arch = arch, Stem = stem, WidthMultiplier = 6 / 64.0, ImageHeight = height, ImageWidth = width, BatchSize = 5,
            HeadHiddenDim = 24, HeadOutputDim = 10, HeadLayers = 3, Temperature = 0.2, Seed = 99, InputGradient = InputGradient.Compute,
        };
        using var onGpu = new SimClrModel<float>(gpu, config);
        using var onCpu = new SimClrModel<float>(CpuTwin, config);
        var views = Random(onCpu.InputShape.Elements, 17);
        var gpuViews = Device(gpu, views).Reshape(onGpu.InputShape, Layout.NCHW);
        var cpuViews = Host(views).Reshape(onCpu.InputShape, Layout.NCHW);

        foreach (var m in new[] { onGpu.Parameters, onCpu.Parameters }) m.ZeroGradients();
        var gpuLoss = Read(gpu, onGpu.Forward(gpuViews));
        var cpuLoss = Read(CpuTwin, onCpu.Forward(cpuViews));
        onGpu.Backward();
        onCpu.Backward();
        gpu.Synchronize();

        AssertClose(gpuLoss, cpuLoss, "loss", 1e-4);
        foreach (var e in onCpu.Parameters.Entries.Where(e => e.Kind != StoreTensorKind.Counter))
        {
            AssertClose(onGpu.Parameters.GetHost(e.Name), onCpu.Parameters.GetHost(e.Name), e.Name, Tolerance);
            if (e.Kind == StoreTensorKind.Parameter)
                AssertClose(onGpu.Parameters.GetGradientHost(e.Name), onCpu.Parameters.GetGradientHost(e.Name), "d" + e.Name, Tolerance);
        }
        AssertClose(Read(gpu, onGpu.ViewsGradient), Read(CpuTwin, onCpu.ViewsGradient), "d views", Tolerance);

        var gpuFeatures = Device(gpu, new float[7 * onGpu.FeatureDim]).Reshape(new Shape(7, onGpu.FeatureDim));
        var cpuFeatures = Host(new float[7 * onCpu.FeatureDim]).Reshape(new Shape(7, onCpu.FeatureDim));
        var images = Random(7L * 3 * height * width, 23);
        onGpu.EncodeFeatures(gpuFeatures, Device(gpu, images).Reshape(new Shape(7, 3, height, width), Layout.NCHW));
        onCpu.EncodeFeatures(cpuFeatures, Host(images).Reshape(new Shape(7, 3, height, width), Layout.NCHW));
        AssertClose(Read(gpu, gpuFeatures), Read(CpuTwin, cpuFeatures), "features", Tolerance);
    }
}
