// CPU twin of the augmentation op (owned by the data/augmentation work, issue 4).
namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T> where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
{
    public void AugmentViews(Tensor<T> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key) =>
        throw new NotSupportedException("AugmentViews is not implemented on the CPU backend yet");
}
