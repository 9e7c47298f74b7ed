// The one exception type that reaches the user as a single line: bad options, bad files, a diverged
// run, a disk that cannot be written. Its message is forced onto one printable line here (control characters
// from file names or file contents are escaped, and a huge message is shortened in the middle), so no input
// can make the program print raw NULs or a multi-line error. Anything else escaping a command is a bug: the
// top-level handler (CliApp) says so and writes the stack trace to a log file.
using System.Globalization;
using System.Text;

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
    /// <summary>A file could not be written (disk full, read-only, permission denied); nothing earlier was lost.</summary>
    CannotWrite = 4,
    /// <summary>A bug: an unexpected exception, whose stack trace went to a log file (EX_SOFTWARE).</summary>
    InternalError = 70,
    /// <summary>Ctrl-C: a checkpoint was saved and the run stopped cleanly.</summary>
    Interrupted = 130,
}

/// <summary>An error the user can fix: the message names the file or option and what is wrong.</summary>
public sealed class UserError(string message, ExitCode code = ExitCode.BadInput) : Exception(OneLine(message))
{
    /// <summary>Messages longer than this keep their start and end (the path and the verdict) and lose the middle.</summary>
    public const int MaxMessageLength = 2000;

    public ExitCode Code { get; } = code;

    public static UserError Option(string option, string problem) => new($"option {option}: {problem}", ExitCode.BadOption);
    public static UserError File(string path, string problem) => new($"{path}: {problem}", ExitCode.BadInput);

    /// <summary><paramref name="text"/> as one printable line: control characters become \n, \0, \u001b, ...</summary>
    public static string OneLine(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (!char.IsControl(c)) { sb.Append(c); continue; }
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                _ => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
            });
        }
        if (sb.Length <= MaxMessageLength) return sb.ToString();
        int keep = (MaxMessageLength - 5) / 2;
        return sb.ToString(0, keep) + " ... " + sb.ToString(sb.Length - keep, keep);
    }
}
