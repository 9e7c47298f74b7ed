// A dataset's images uploaded once to a backend as uint8 [Count, H, W, C] and kept there for the whole
// run (CIFAR-10's 50000 images are 150 MB): AugmentViews reads them by sample index, so a training step
// moves only int32 indices to the device. Owns its storage; dispose once.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Training.Data;

public sealed class ResidentImages : IDisposable
{
    private ResidentImages(Storage<byte> storage, ImageSetShape shape)
    {
        Storage = storage;
        Shape = shape;
    }

    public Storage<byte> Storage { get; }
    public ImageSetShape Shape { get; }
    public Tensor<byte> Images => Storage.AsTensor(new Shape(Shape.Count, Shape.Height, Shape.Width, Shape.Channels), Layout.NHWC);

    public static ResidentImages Upload<T>(IBackend<T> backend, ImageDataset dataset) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var storage = backend.Allocate<byte>(dataset.Images.LongLength);
        try
        {
            var resident = new ResidentImages(storage, dataset.Shape);
            backend.Upload(resident.Images, dataset.Images);
            return resident;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    public void Dispose() => Storage.Dispose();
}
