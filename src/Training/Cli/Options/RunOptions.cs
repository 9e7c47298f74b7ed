// How a command runs and where it reports: the device, the progress display, the run directory, and the
// options only a pretraining run has (resume, checkpoints kept, pauses, loss read-back, final evaluation).
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class DeviceOptions : OptionGroup
{
    public DeviceOptions()
    {
        Bound(new Option<string>("--device") { Description = $"auto (CUDA when available, else CPU), cpu, cuda, cuda:N {DefaultText.Of(c => c.Device)}" }, (c, v) => c with { Device = v });
        Bound(new Option<bool>("--verbose") { Description = "Also print the details behind one-line notices (where each CUDA library was looked for)" },
            (c, v) => c with { Verbosity = v ? Verbosity.Verbose : Verbosity.Normal });
    }
}

internal sealed class ProgressOptions : OptionGroup
{
    public ProgressOptions() =>
        Bound(Choice("--progress", $"auto (bars on a terminal, lines otherwise), bars, plain, quiet {DefaultText.Of(c => c.Progress)}", "auto", "bars", "plain", "quiet"),
            (c, v) => c with { Progress = v switch { "bars" => ProgressMode.Bars, "plain" => ProgressMode.Plain, "quiet" => ProgressMode.Quiet, _ => ProgressMode.Auto } });
}

/// <summary>Where a run's folder is: --out, or ./runs/&lt;--name or a UTC timestamp&gt;.</summary>
internal sealed class RunDirectoryOptions : OptionGroup
{
    public RunDirectoryOptions()
    {
        Bound(new Option<string>("--out") { Description = "Run directory (default ./runs/<name or timestamp>)" }, (c, v) => c with { Out = v });
        Bound(new Option<string>("--name") { Description = "Run name under ./runs when --out is not given" }, (c, v) => c with { Name = v });
    }
}

internal sealed class PretrainRunOptions : OptionGroup
{
    /// <summary>What a resumed run takes from the command line; every other option keeps the checkpoint's value.</summary>
    public static readonly IReadOnlySet<string> Session = new HashSet<string> { "--resume", "--device", "--progress", "--stop-after", "--eval", "--loss-every", "--keep-last", "--out", "--name", "--verbose" };

    public readonly Option<string> Resume;

    public PretrainRunOptions()
    {
        Bound(new Option<int>("--knn-every") { Description = $"Run the kNN monitor every E epochs, 0 = only at the end {DefaultText.Of(c => c.KnnEvery)}" }, (c, v) => c with { KnnEvery = v });
        Bound(Choice("--eval", $"What pretraining ends with: full (linear + kNN, SimCLR and random encoder) or none {DefaultText.Of(c => c.Eval)}", "full", "none"),
            (c, v) => c with { Eval = v == "none" ? EvalMode.None : EvalMode.Full });
        Resume = Bound(new Option<string>("--resume") { Description = "Continue exactly from this checkpoint; the run keeps its own settings except those of this session given here (--device, --progress, --stop-after, --eval, --loss-every, --keep-last, --out)" }, (c, v) => c with { Resume = v });
        Bound(new Option<int>("--keep-last") { Description = $"Checkpoints kept besides the best {DefaultText.Of(c => c.KeepLast)}" }, (c, v) => c with { KeepLast = v });
        Bound(new Option<int>("--loss-every") { Description = $"Read the loss back every k steps {DefaultText.Of(c => c.LossEvery)}" }, (c, v) => c with { LossEvery = v });
        Bound(new Option<int>("--stop-after") { Description = $"Pause after N epochs with a checkpoint; --resume continues the same schedule; 0 = run to the end {DefaultText.Of(c => c.StopAfter)}" }, (c, v) => c with { StopAfter = v });
    }
}

/// <summary>Options a command reads for itself rather than into the RunConfig.</summary>
internal sealed class CheckpointOption : OptionGroup
{
    public readonly Option<string> Checkpoint;

    public CheckpointOption(string description) =>
        Checkpoint = Unbound(new Option<string>("--checkpoint") { Description = description });

    public string Required(ParseResult r) => CommandLineValues.Required(r, Checkpoint);
}

internal sealed class OutputOption : OptionGroup
{
    public readonly Option<string> Output;

    public OutputOption(string description) =>
        Output = Unbound(new Option<string>("--output") { Description = description });
}

internal static class CommandLineValues
{
    public static string Required(ParseResult r, Option<string> option) =>
        r.GetValue(option) is { Length: > 0 } v ? v : throw UserError.Option(option.Name, "is required");
}
