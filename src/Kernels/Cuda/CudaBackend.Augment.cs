// CUDA launcher of kernels/augment.cu: one launch per view batch, one block of AugmentThreads per image.
// The AugmentSpec and ImageSetShape structs go to the kernel by value (their C# layout is the kernel's
// ABI), the key as three scalars; arguments travel through a stack-allocated pointer array, so a launch
// neither allocates nor boxes. Dynamic shared memory holds one staging line per warp for the separable
// blur plus the two tap vectors. The kernel also has static shared memory (its draws and reduction
// scratch), and the 48 KiB default and the opt-in ceiling bound both together: a size that needs more
// opts in once (KernelGrids.DynamicSharedMemory).
using SimClr.Kernels.Cuda.Launch;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private const int AugmentThreads = 256;

    private CudaFunction _augmentKernel;
    private int _augmentStaticShared = -1;
    private int _augmentSharedOptIn;

    /// <summary>Dynamic shared memory of augment_views for an output of outH x outW (see kernels/augment.cu).</summary>
    internal static int AugmentSharedBytes(int outH, int outW)
    {
        static int Radius(int side) => Math.Max(1, (side + 5) / 10 / 2);
        int floats = AugmentThreads / 32 * Math.Max(outH, outW) + 2 * Radius(outW) + 1 + 2 * Radius(outH) + 1;
        return floats * sizeof(float);
    }

    public unsafe void AugmentViews(Tensor<float> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key)
    {
        int batch = checked((int)sampleIndices.Length);
        AugmentArguments.Validate(views.Length, images.Length, batch, set, spec);
        if (batch == 0) return;
        nint pViews = DevicePointer(views, views.Length, nameof(views));
        nint pImages = DevicePointer(images, set.Elements, nameof(images));
        nint pIndices = DevicePointer(sampleIndices, batch, nameof(sampleIndices));

        int shared = AugmentSharedBytes(spec.OutHeight, spec.OutWidth);
        var kernel = _augmentKernel.IsLoaded ? _augmentKernel : (_augmentKernel = GetFunction("augment", "augment_views"));
        if (_augmentStaticShared < 0) _augmentStaticShared = FunctionAttribute(kernel, CuFunctionAttribute.SharedSizeBytes);
        var (optIn, refusal) = KernelGrids.DynamicSharedMemory(_augmentStaticShared, shared, MaxSharedMemoryPerBlockOptin);
        if (refusal is not null)
            throw new ArgumentException($"AugmentViews: an output of {spec.OutHeight}x{spec.OutWidth} {refusal}", nameof(spec));
        if (optIn && shared > _augmentSharedOptIn)
        {
            SetMaxDynamicSharedMemory(kernel, shared);
            _augmentSharedOptIn = shared;
        }

        var shape = set;
        var s = spec;
        ulong seed = key.Seed;
        int epoch = key.Epoch, view = key.View;
        void** args = stackalloc void*[] { &pViews, &pImages, &pIndices, &shape, &s, &seed, &epoch, &view };
        Launch(kernel, new Dim3((uint)batch), AugmentThreads, (uint)shared, args);
    }
}
