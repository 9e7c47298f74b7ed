// The command line: pretrain (also what runs with no command), linear-eval, knn, finetune, augment-preview, export,
// info. Each command lives in its own file under Commands/ and is built from the option groups under
// Options/ that it uses, so its --help lists only what it reads. Tests call Run in-process with their own
// writers. No input a user can give ends in a stack trace:
//   - a parse error is one line naming the option (and, for a choice, listing the choices);
//   - a UserError or DatasetException is one line and its exit code;
//   - running out of memory is one line saying what to lower;
//   - anything else is a bug: one line says so and names a log file holding the stack trace (exit 70).
using System.CommandLine;
using System.Globalization;
using SimClr.Training.Cli.Commands;
using SimClr.Training.Data;

namespace SimClr.Training.Cli;

/// <summary>Where a command writes, the token Ctrl-C cancels, and optional hooks for tests. EndProcess, when set
/// (by Program), ends the process with an exit code at once: used when a Ctrl-C abandons a step that cannot be
/// waited for; without it (tests) the command returns normally once the step is over.</summary>
public sealed record CliContext(TextWriter Output, TextWriter Error, CancellationToken Cancel)
{
    public Pretraining.TrainingHooks? Hooks { get; init; }
    public Action<int>? EndProcess { get; init; }
}

public static class CliApp
{
    public static int Run(string[] args, CliContext context)
    {
        try
        {
            return Dispatch(args, context);
        }
        catch (Exception raw)
        {
            var e = Unwrap(raw);
            switch (e)
            {
                case UserError u:
                    context.Error.WriteLine($"error: {u.Message}");
                    return (int)u.Code;
                case DatasetException d:
                    context.Error.WriteLine($"error: {UserError.OneLine(d.Message)}");
                    return (int)ExitCode.BadInput;
                case OutOfMemoryException:
                    context.Error.WriteLine("error: out of memory; lower --batch-size or --width, or use fewer images (--train-subset, --shapes-count)");
                    return (int)ExitCode.BadOption;
                default:
                    return ReportBug(raw, args, context);
            }
        }
    }

    private static int Dispatch(string[] args, CliContext context)
    {
        var root = new RootCommand("SimClr.Native: SimCLR pretraining and evaluation (CPU or CUDA). With no command, runs `pretrain`. "
            + "With --dataset shapes (the default) a quick CPU preset replaces the paper defaults shown below: ResNet-18 at width 0.125, "
            + "batch 64, 12 epochs, 1 warmup epoch, √B lr scaling with base 0.6, τ 0.2, crops of at least 50%, kNN every 4 epochs, "
            + "30 linear-probe epochs; any option given still wins.");
        PretrainCommand.Register(root, context);
        root.Add(LinearEvalCommand.Create(context));
        root.Add(KnnCommand.Create(context));
        root.Add(FinetuneCommand.Create(context));
        root.Add(AugmentPreviewCommand.Create(context));
        root.Add(ExportCommand.Create(context));
        root.Add(EmbedCommand.Create(context));
        root.Add(InfoCommand.Create(context));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            context.Error.WriteLine($"error: {ParseErrorLine(parsed.Errors[0])} (see --help)");
            return (int)ExitCode.BadOption;
        }
        return parsed.Invoke(new InvocationConfiguration
        {
            Output = context.Output,
            Error = context.Error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        });
    }

    /// <summary>A parse error as one line that names the option it concerns.</summary>
    private static string ParseErrorLine(System.CommandLine.Parsing.ParseError error)
    {
        string message = string.Join(" ", error.Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
        string? option = error.SymbolResult switch
        {
            System.CommandLine.Parsing.OptionResult o => o.Option.Name,
            System.CommandLine.Parsing.ArgumentResult { Parent: System.CommandLine.Parsing.OptionResult o } => o.Option.Name,
            _ => null,
        };
        return UserError.OneLine(option is null || message.Contains(option, StringComparison.Ordinal) ? message : $"option {option}: {message}");
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
            else if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
            else return e;
        }
    }

    /// <summary>An exception no input should cause: says it is a bug and where its stack trace was written.</summary>
    private static int ReportBug(Exception e, string[] args, CliContext context)
    {
        string log = Path.Combine(Path.GetTempPath(),
            $"simclr-native-crash-{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Environment.ProcessId}.log");
        string report = string.Join(Environment.NewLine,
            $"SimClr.Native {typeof(CliApp).Assembly.GetName().Version}, .NET {Environment.Version}, {DateTime.UtcNow:O}",
            $"arguments: {string.Join(' ', args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a))}",
            "",
            e.ToString(),
            "");
        string where;
        try
        {
            File.WriteAllText(log, report);
            where = $"the stack trace is in {log}; please report it with that file";
        }
        catch (Exception writeFailure) when (writeFailure is IOException or UnauthorizedAccessException)
        {
            where = $"no log could be written to {log} ({writeFailure.Message}); please report it with the command line";
        }
        string first = e.Message.Split('\n', 2)[0];
        context.Error.WriteLine(UserError.OneLine($"error: internal error, this is a bug in SimClr.Native and not a problem with the input: {e.GetType().Name}: {first}; {where}"));
        return (int)ExitCode.InternalError;
    }
}
