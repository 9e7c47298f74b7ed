// The building block of the command line: a named set of options that commands share (data, model,
// optimizer, augmentation, kNN, linear probe, device, ...), each option declared once together with the
// binder that copies its value into a RunConfig. A command adds the groups it uses and nothing else, so its
// --help offers only options it reads. Values that were not given keep RunConfig's defaults, so defaults
// live in one place (RunConfig) and the help text states them.
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal abstract class OptionGroup
{
    private readonly List<Option> _options = [];
    private readonly List<Func<ParseResult, RunConfig, RunConfig>> _binders = [];

    public IReadOnlyList<Option> Options => _options;

    /// <summary>Adds every option of the group to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in _options) command.Add(o);
    }

    /// <summary><paramref name="config"/> with each option of this group that the command line gave.</summary>
    public RunConfig Apply(ParseResult result, RunConfig config)
    {
        foreach (var bind in _binders) config = bind(result, config);
        return config;
    }

    /// <summary>Declares an option that sets a RunConfig value when given.</summary>
    protected Option<T> Bound<T>(Option<T> option, Func<RunConfig, T, RunConfig> apply)
    {
        _options.Add(option);
        _binders.Add((r, c) => Given(r, option) ? apply(c, r.GetValue(option)!) : c);
        return option;
    }

    /// <summary>Declares an option that a command reads itself (a path to write, a count).</summary>
    protected Option<T> Unbound<T>(Option<T> option)
    {
        _options.Add(option);
        return option;
    }

    public static bool Given(ParseResult r, Option option) => r.GetResult(option) is { Implicit: false };

    /// <summary>A string option limited to <paramref name="choices"/>; a wrong value is a parse error that names
    /// the option and lists the choices.</summary>
    protected static Option<string> Choice(string name, string description, params string[] choices)
    {
        var o = new Option<string>(name) { Description = description };
        o.AcceptOnlyFromAmong(choices);
        return o;
    }
}

/// <summary>One command's option groups, applied in order over a starting config.</summary>
internal sealed class OptionSet(params OptionGroup[] groups)
{
    public void AddTo(Command command)
    {
        foreach (var g in groups) g.AddTo(command);
    }

    public RunConfig Apply(ParseResult result, RunConfig config)
    {
        foreach (var g in groups) config = g.Apply(result, config);
        return config;
    }
}
