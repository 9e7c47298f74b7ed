// CUDA launcher of kernels/augment.cu (owned by the data/augmentation work, issue 4).
namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    public void AugmentViews(Tensor<float> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key) =>
        throw new NotSupportedException("AugmentViews is not implemented on the CUDA backend yet");
}
