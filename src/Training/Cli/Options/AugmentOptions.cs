// The augmentation: a preset for the image size, then each knob that was given (a null override keeps the
// preset's value).
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class AugmentOptions : OptionGroup
{
    public AugmentOptions()
    {
        Bound(Choice("--augment", "Preset: auto (cifar for ≤ 32 px, else paper), cifar (s=0.5, no blur), paper", "auto", "cifar", "paper"),
            (c, v) => c with { Augment = v switch { "cifar" => AugmentPreset.Cifar, "paper" => AugmentPreset.Paper, _ => AugmentPreset.Auto } });
        Knob("--color-strength", "Colour jitter strength s (brightness/contrast/saturation 0.8s, hue 0.2s)", (o, v) => o with { ColorStrength = v });
        Knob("--crop-min", "Random resized crop: smallest area fraction (0.08)", (o, v) => o with { CropAreaMin = v });
        Knob("--crop-max", "Random resized crop: largest area fraction (1)", (o, v) => o with { CropAreaMax = v });
        Knob("--aspect-min", "Random resized crop: smallest aspect ratio (3/4)", (o, v) => o with { AspectMin = v });
        Knob("--aspect-max", "Random resized crop: largest aspect ratio (4/3)", (o, v) => o with { AspectMax = v });
        Knob("--flip", "Horizontal flip probability (0.5)", (o, v) => o with { Flip = v });
        Knob("--jitter", "Colour jitter probability (0.8)", (o, v) => o with { Jitter = v });
        Knob("--brightness", "Brightness jitter (overrides 0.8s)", (o, v) => o with { Brightness = v });
        Knob("--contrast", "Contrast jitter (overrides 0.8s)", (o, v) => o with { Contrast = v });
        Knob("--saturation", "Saturation jitter (overrides 0.8s)", (o, v) => o with { Saturation = v });
        Knob("--hue", "Hue jitter (overrides 0.2s)", (o, v) => o with { Hue = v });
        Knob("--grayscale", "Random grayscale probability (0.2)", (o, v) => o with { Grayscale = v });
        Knob("--blur", "Gaussian blur probability (0.5 paper, 0 cifar)", (o, v) => o with { Blur = v });
        Knob("--blur-sigma-min", "Blur sigma lower bound (0.1)", (o, v) => o with { BlurSigmaMin = v });
        Knob("--blur-sigma-max", "Blur sigma upper bound (2.0)", (o, v) => o with { BlurSigmaMax = v });
    }

    private void Knob(string name, string description, Func<AugmentOverrides, double, AugmentOverrides> apply) =>
        Bound(new Option<double>(name) { Description = description }, (c, v) => c with { AugmentOverrides = apply(c.AugmentOverrides, v) });
}
