// One whole SimCLR training step — augmentation of uint8 images into two views, ResNet-18 (CIFAR stem, full
// width) + projection head + NT-Xent forward and backward, then one LARS update — on the CUDA backend and on
// its CPU twin from identical inputs. This is the end-to-end statement that a GPU step computes what the
// reference defines: loss within 1e-4 and every parameter gradient within 1e-3 (relative). Skips without a GPU.
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Cuda.CudaTestSupport;

namespace SimClr.Tests.Cuda;

[Collection(CudaTestSupport.Collection)]
[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
public class FullStepTests
{
    [Fact]
    public void ResNet18CifarBatch32StepMatchesTheCpuTwin()
    {
        var gpu = Backend();
        const int batch = 32, side = 32;
        var config = new SimClrModelConfig { Arch = ResNetArch.ResNet18, Stem = StemKind.Cifar, BatchSize = batch, Temperature = 0.5, Seed = 5 };
        var set = new ImageSetShape(40, side, side, 3);
        var pixels = new byte[set.Elements];
        new System.Random(11).NextBytes(pixels);
        var indices = Enumerable.Range(0, batch).Select(i => (i * 7) % set.Count).ToArray();
        var spec = AugmentSpec.Cifar(side);

        float gpuLoss = Step(gpu, config, set, pixels, indices, spec, out var gpuModel);
        float cpuLoss = Step(CpuTwin, config, set, pixels, indices, spec, out var cpuModel);
        using (gpuModel)
        using (cpuModel)
        {
            Assert.True(Math.Abs(gpuLoss - cpuLoss) <= 1e-4 * Math.Abs(cpuLoss), $"loss: GPU {gpuLoss} vs CPU {cpuLoss}");
            foreach (var e in cpuModel.Parameters.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            {
                AssertClose(gpuModel.Parameters.GetGradientHost(e.Name), cpuModel.Parameters.GetGradientHost(e.Name), "d" + e.Name, 1e-3);
                AssertClose(gpuModel.Parameters.GetHost(e.Name), cpuModel.Parameters.GetHost(e.Name), e.Name + " after LARS", 1e-3);
            }
        }
    }

    private static float Step(IBackend<float> backend, SimClrModelConfig config, ImageSetShape set, byte[] pixels, int[] indices,
        AugmentSpec spec, out SimClrModel<float> model)
    {
        model = new SimClrModel<float>(backend, config);
        using var imageStorage = backend.Allocate<byte>(pixels.Length);
        using var indexStorage = backend.Allocate<int>(indices.Length);
        using var viewStorage = backend.Allocate<float>(model.InputShape.Elements);
        var images = imageStorage.AsTensor();
        backend.Upload(images, pixels);
        var sampleIndices = indexStorage.AsTensor();
        backend.Upload(sampleIndices, indices);
        var views = viewStorage.AsTensor().Reshape(model.InputShape, Layout.NCHW);
        for (int view = 0; view < 2; view++)
            backend.AugmentViews(views.Rows(view * indices.Length, indices.Length), images, sampleIndices, set, spec, new AugmentKey(42, 3, view));

        var store = model.Parameters;
        store.ZeroGradients();
        var loss = new float[1];
        backend.Download(loss.AsSpan(), model.Forward(views));
        model.Backward();
        using var momentum = store.AllocateStateBuffer();
        using var norms = backend.Allocate<float>(2L * store.SegmentCount);
        backend.LarsUpdate(store.Parameters, momentum.AsTensor(), store.Gradients, store.Segments, norms.AsTensor(), new LarsHyper(LearningRate: 1.2));
        backend.Synchronize();
        return loss[0];
    }
}
