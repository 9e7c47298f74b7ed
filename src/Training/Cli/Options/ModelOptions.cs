// The encoder and projection head a pretraining run builds. Evaluation commands take the model from the
// checkpoint instead, so they do not offer these.
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class ModelOptions : OptionGroup
{
    public ModelOptions()
    {
        Bound(Choice("--arch", $"Encoder: resnet18, resnet34, resnet50 {DefaultText.Of(c => c.Arch)}", "resnet18", "resnet34", "resnet50"),
            (c, v) => c with { Arch = v switch { "resnet18" => Architecture.ResNet18, "resnet34" => Architecture.ResNet34, _ => Architecture.ResNet50 } });
        Bound(new Option<double>("--width") { Description = $"ResNet width multiplier, 1 = torchvision widths {DefaultText.Of(c => c.Width)}" }, (c, v) => c with { Width = v });
        Bound(Choice("--stem", $"auto (CIFAR stem for ≤ 32 px), cifar, imagenet {DefaultText.Of(c => c.Stem)}", "auto", "cifar", "imagenet"),
            (c, v) => c with { Stem = v switch { "cifar" => StemChoice.Cifar, "imagenet" => StemChoice.ImageNet, _ => StemChoice.Auto } });
        Bound(new Option<int>("--head-hidden") { Description = $"Projection head hidden width, 0 = the encoder's feature width {DefaultText.Of(c => c.HeadHidden)}" }, (c, v) => c with { HeadHidden = v });
        Bound(new Option<int>("--head-out") { Description = $"Projection head output width {DefaultText.Of(c => c.HeadOut)}" }, (c, v) => c with { HeadOut = v });
    }
}

/// <summary>The seed of initialization, data order and augmentation: every command that draws anything takes it.</summary>
internal sealed class SeedOptions : OptionGroup
{
    public SeedOptions(DefaultsFrom from = DefaultsFrom.Presets) =>
        Bound(new Option<ulong>("--seed") { Description = $"Seed of initialization, data order and augmentation {DefaultText.Of(c => c.Seed, from)}" }, (c, v) => c with { Seed = v });
}
