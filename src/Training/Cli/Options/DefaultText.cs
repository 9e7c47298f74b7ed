// The "(default …)" of an option's help, generated from the values a command really starts from, so the text
// cannot drift from the code: a pretraining run starts from RunConfig's paper defaults, or from
// RunConfig.ShapesDefaults for the built-in shapes set; an evaluation command starts from the checkpoint's own
// config. A test passes each stated default back as a flag and checks that nothing changes.
using System.Globalization;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

/// <summary>Where the values an option group's options leave alone come from.</summary>
internal enum DefaultsFrom
{
    /// <summary>RunConfig's paper defaults, or the shapes preset with --dataset shapes.</summary>
    Presets,
    /// <summary>The config stored in the checkpoint being evaluated.</summary>
    Checkpoint,
}

internal static class DefaultText
{
    public const string FromCheckpoint = "(default: the checkpoint's)";

    /// <summary>"(default X)", or "(default X; Y with the shapes preset)" when the presets differ.</summary>
    public static string Of<T>(Func<RunConfig, T> value, DefaultsFrom from = DefaultsFrom.Presets)
    {
        if (from == DefaultsFrom.Checkpoint) return FromCheckpoint;
        string paper = Format(value(new RunConfig())), shapes = Format(value(RunConfig.ShapesDefaults));
        return paper == shapes ? $"(default {paper})" : $"(default {paper}; {shapes} with the shapes preset)";
    }

    public static string Format<T>(T value) => value switch
    {
        null => "none",
        double d => d.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant(),
        Enum e => CliEnumConverter.Name(e),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };
}
