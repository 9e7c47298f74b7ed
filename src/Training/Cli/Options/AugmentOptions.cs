// The augmentation: a preset for the image size, then each knob that was given (a null override keeps the
// preset's value).
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class AugmentOptions : OptionGroup
{
    public AugmentOptions()
    {
        Bound(Choice("--augment", $"Preset: auto (cifar for ≤ 32 px, else paper), cifar (s=0.5, no blur), paper {DefaultText.Of(c => c.Augment)}", "auto", "cifar", "paper"),
            (c, v) => c with { Augment = v switch { "cifar" => AugmentPreset.Cifar, "paper" => AugmentPreset.Paper, _ => AugmentPreset.Auto } });
        Knob("--color-strength", "Colour jitter strength s (brightness/contrast/saturation 0.8s, hue 0.2s)", s => s.Brightness / 0.8f, o => o.ColorStrength, (o, v) => o with { ColorStrength = v });
        Knob("--crop-min", "Random resized crop: smallest area fraction", s => s.CropAreaMin, o => o.CropAreaMin, (o, v) => o with { CropAreaMin = v });
        Knob("--crop-max", "Random resized crop: largest area fraction", s => s.CropAreaMax, o => o.CropAreaMax, (o, v) => o with { CropAreaMax = v });
        Knob("--aspect-min", "Random resized crop: smallest aspect ratio", s => s.AspectMin, o => o.AspectMin, (o, v) => o with { AspectMin = v });
        Knob("--aspect-max", "Random resized crop: largest aspect ratio", s => s.AspectMax, o => o.AspectMax, (o, v) => o with { AspectMax = v });
        Knob("--flip", "Horizontal flip probability", s => s.FlipProbability, o => o.Flip, (o, v) => o with { Flip = v });
        Knob("--jitter", "Colour jitter probability", s => s.JitterProbability, o => o.Jitter, (o, v) => o with { Jitter = v });
        Knob("--brightness", "Brightness jitter (overrides 0.8s)", s => s.Brightness, o => o.Brightness, (o, v) => o with { Brightness = v });
        Knob("--contrast", "Contrast jitter (overrides 0.8s)", s => s.Contrast, o => o.Contrast, (o, v) => o with { Contrast = v });
        Knob("--saturation", "Saturation jitter (overrides 0.8s)", s => s.Saturation, o => o.Saturation, (o, v) => o with { Saturation = v });
        Knob("--hue", "Hue jitter (overrides 0.2s)", s => s.Hue, o => o.Hue, (o, v) => o with { Hue = v });
        Knob("--grayscale", "Random grayscale probability", s => s.GrayscaleProbability, o => o.Grayscale, (o, v) => o with { Grayscale = v });
        Knob("--blur", "Gaussian blur probability", s => s.BlurProbability, o => o.Blur, (o, v) => o with { Blur = v });
        Knob("--blur-sigma-min", "Blur sigma lower bound", s => s.BlurSigmaMin, o => o.BlurSigmaMin, (o, v) => o with { BlurSigmaMin = v });
        Knob("--blur-sigma-max", "Blur sigma upper bound", s => s.BlurSigmaMax, o => o.BlurSigmaMax, (o, v) => o with { BlurSigmaMax = v });
    }

    /// <summary>An augmentation knob whose help states the presets' values: the cifar preset's (what ≤ 32 px images
    /// get), the paper preset's when it differs, and the shapes preset's when it overrides the knob.</summary>
    private void Knob(string name, string description, Func<Kernels.AugmentSpec, float> preset, Func<AugmentOverrides, double?> shapes,
        Func<AugmentOverrides, double, AugmentOverrides> apply)
    {
        string cifar = Text(preset(Kernels.AugmentSpec.Cifar())), paper = Text(preset(Kernels.AugmentSpec.Paper(224)));
        string text = cifar == paper ? $"(default {cifar}" : $"(default {cifar} for ≤ 32 px, {paper} for the paper preset";
        if (shapes(RunConfig.ShapesDefaults.AugmentOverrides) is { } s) text += $"; {Text((float)s)} with the shapes preset";
        Bound(new Option<double>(name) { Description = $"{description} {text})" }, (c, v) => c with { AugmentOverrides = apply(c.AugmentOverrides, v) });
    }

    private static string Text(float v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
