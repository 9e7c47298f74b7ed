// The parameters of the SimCLR augmentation op. The struct is blittable and passed by value to the
// CUDA kernel, so its field order is part of the kernel ABI (kernels/augment.cu mirrors it).
using System.Runtime.InteropServices;

namespace SimClr.Kernels;

/// <summary>A resident image set: uint8, [Count, Height, Width, Channels] (HWC per image), Channels 1 or 3.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ImageSetShape(int Count, int Height, int Width, int Channels)
{
    public long Elements => (long)Count * Height * Width * Channels;
}

/// <summary>What makes one augmentation draw unique: every random decision is a pure function of
/// (Seed, Epoch, sample index, View, draw number) through Philox4x32-10.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct AugmentKey(ulong Seed, int Epoch, int View);

/// <summary>SimCLR's composed augmentation. Output is float NCHW with 3 channels (grayscale inputs are
/// replicated), normalized by Mean/Std.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct AugmentSpec
{
    public int OutHeight { get; init; }
    public int OutWidth { get; init; }
    public float CropAreaMin { get; init; }
    public float CropAreaMax { get; init; }
    public float AspectMin { get; init; }
    public float AspectMax { get; init; }
    public float FlipProbability { get; init; }
    public float JitterProbability { get; init; }
    public float Brightness { get; init; }
    public float Contrast { get; init; }
    public float Saturation { get; init; }
    public float Hue { get; init; }
    public float GrayscaleProbability { get; init; }
    public float BlurProbability { get; init; }
    public float BlurSigmaMin { get; init; }
    public float BlurSigmaMax { get; init; }
    public float MeanR { get; init; }
    public float MeanG { get; init; }
    public float MeanB { get; init; }
    public float StdR { get; init; }
    public float StdG { get; init; }
    public float StdB { get; init; }

    /// <summary>The paper's ImageNet defaults with colour strength <paramref name="strength"/> (s = 1).</summary>
    public static AugmentSpec Paper(int size, float strength = 1.0f) => new()
    {
        OutHeight = size, OutWidth = size,
        CropAreaMin = 0.08f, CropAreaMax = 1.0f, AspectMin = 3f / 4f, AspectMax = 4f / 3f,
        FlipProbability = 0.5f,
        JitterProbability = 0.8f, Brightness = 0.8f * strength, Contrast = 0.8f * strength, Saturation = 0.8f * strength, Hue = 0.2f * strength,
        GrayscaleProbability = 0.2f,
        BlurProbability = 0.5f, BlurSigmaMin = 0.1f, BlurSigmaMax = 2.0f,
        MeanR = 0.485f, MeanG = 0.456f, MeanB = 0.406f, StdR = 0.229f, StdG = 0.224f, StdB = 0.225f,
    };

    /// <summary>The paper's CIFAR-10 setting: colour strength 0.5 and no blur.</summary>
    public static AugmentSpec Cifar(int size = 32) => Paper(size, 0.5f) with
    {
        BlurProbability = 0f,
        MeanR = 0.4914f, MeanG = 0.4822f, MeanB = 0.4465f, StdR = 0.2470f, StdG = 0.2435f, StdB = 0.2616f,
    };

    public void Validate()
    {
        static void Require(bool ok, string what) { if (!ok) throw new ArgumentException($"invalid augmentation: {what}"); }
        Require(OutHeight > 0 && OutWidth > 0, $"output size {OutHeight}x{OutWidth} must be positive");
        Require(CropAreaMin > 0 && CropAreaMin <= CropAreaMax && CropAreaMax <= 1, $"crop area range [{CropAreaMin}, {CropAreaMax}] must lie in (0, 1]");
        Require(AspectMin > 0 && AspectMin <= AspectMax, $"aspect range [{AspectMin}, {AspectMax}] must be positive and ordered");
        foreach (var (p, name) in new[] { (FlipProbability, "flip"), (JitterProbability, "jitter"), (GrayscaleProbability, "grayscale"), (BlurProbability, "blur") })
            Require(p >= 0 && p <= 1, $"{name} probability {p} must lie in [0, 1]");
        Require(Brightness >= 0 && Contrast >= 0 && Saturation >= 0, "jitter strengths must be ≥ 0");
        Require(Hue >= 0 && Hue <= 0.5f, $"hue {Hue} must lie in [0, 0.5]");
        Require(BlurSigmaMin > 0 && BlurSigmaMin <= BlurSigmaMax, $"blur sigma range [{BlurSigmaMin}, {BlurSigmaMax}] must be positive and ordered");
        Require(StdR > 0 && StdG > 0 && StdB > 0, "normalization std must be positive");
    }
}
