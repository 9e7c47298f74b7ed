// --config FILE for pretrain: a run's config.json (ConfigFile) replaces the defaults as the starting point, and
// the flags given beside it override it.
using System.CommandLine;

namespace SimClr.Training.Cli.Options;

internal sealed class ConfigOption : OptionGroup
{
    public readonly Option<string> Config;

    public ConfigOption() =>
        Config = Unbound(new Option<string>("--config")
        { Description = "Start from this run's config.json instead of the defaults (out, name and resume excepted); flags given beside it override it" });
}
