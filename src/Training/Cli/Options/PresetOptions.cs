// --preset: a named, CPU-sensible starting config for a built-in case (RunConfig.FromPreset). The preset
// replaces the defaults a command would start from; every option given on the command line still wins.
// Without --preset, the shapes set starts from shapes-cpu and any other dataset from the paper defaults.
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class PresetOptions : OptionGroup
{
    public static readonly IReadOnlyDictionary<string, Preset> Names = new Dictionary<string, Preset>
    {
        ["shapes-cpu"] = Preset.ShapesCpu,
        ["fashion-mnist-cpu"] = Preset.FashionMnistCpu,
    };

    public readonly Option<string> Name;

    public PresetOptions() =>
        Name = Unbound(Choice("--preset",
            "Start from a named CPU preset: shapes-cpu (the default for shapes: ResNet-18 width 0.125, batch 64, 12 epochs) or "
            + "fashion-mnist-cpu (2,000 Fashion-MNIST images, width 0.125, batch 64, 5 epochs); options given still win",
            [.. Names.Keys]));

    /// <summary>The config a command starts from: the named preset, else <paramref name="data"/>'s per-dataset defaults.</summary>
    public RunConfig Start(ParseResult result, DataOptions data) =>
        Given(result, Name) ? RunConfig.FromPreset(Names[result.GetValue(Name)!]) : data.Defaults(result);

    /// <summary>The preset name as `--preset` spells it.</summary>
    public static string NameOf(Preset preset) => Names.First(p => p.Value == preset).Key;
}
