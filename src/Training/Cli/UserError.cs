// The one exception type that reaches the user as a single line: bad options, bad files, a diverged
// run. Anything else escaping the program is a bug and keeps its stack trace.
namespace SimClr.Training.Cli;

/// <summary>Why the program stops on bad input; the exit code tells scripts which kind it was.</summary>
public enum ExitCode
{
    Ok = 0,
    /// <summary>A dataset, checkpoint or other file is missing or malformed.</summary>
    BadInput = 1,
    /// <summary>An option value is impossible (batch size 0, unknown arch, ...).</summary>
    BadOption = 2,
    /// <summary>The loss became NaN or Inf; the last good checkpoint is kept.</summary>
    Diverged = 3,
    /// <summary>Ctrl-C: a checkpoint was saved and the run stopped cleanly.</summary>
    Interrupted = 130,
}

/// <summary>An error the user can fix: the message names the file or option and what is wrong.</summary>
public sealed class UserError(string message, ExitCode code = ExitCode.BadInput) : Exception(message)
{
    public ExitCode Code { get; } = code;

    public static UserError Option(string option, string problem) => new($"option {option}: {problem}", ExitCode.BadOption);
    public static UserError File(string path, string problem) => new($"{path}: {problem}", ExitCode.BadInput);
}
