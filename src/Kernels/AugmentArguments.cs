// Argument checks shared by every backend's AugmentViews, so a bad call fails the same way (with the
// same message) on the CPU and on the GPU, before anything runs.
namespace SimClr.Kernels;

public static class AugmentArguments
{
    public static void Validate(long viewsLength, long imagesLength, long batch, in ImageSetShape set, in AugmentSpec spec)
    {
        spec.Validate();
        if (set.Count <= 0 || set.Height <= 0 || set.Width <= 0)
            throw new ArgumentException($"image set {set.Count}x{set.Height}x{set.Width}x{set.Channels} must have positive sizes", nameof(set));
        if (set.Channels is not (1 or 3))
            throw new ArgumentException($"image set has {set.Channels} channels; augmentation takes 1 (grayscale) or 3 (RGB)", nameof(set));
        if (imagesLength < set.Elements)
            throw new ArgumentException($"images hold {imagesLength} bytes but the set {set.Count}x{set.Height}x{set.Width}x{set.Channels} needs {set.Elements}", "images");
        long expected = batch * 3L * spec.OutHeight * spec.OutWidth;
        if (viewsLength != expected)
            throw new ArgumentException($"views hold {viewsLength} elements; {batch} samples of 3x{spec.OutHeight}x{spec.OutWidth} need {expected}", "views");
    }
}
