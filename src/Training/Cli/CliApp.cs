// The command line: pretrain (also what runs with no command), linear-eval, knn, finetune, augment-preview, export,
// info. Each command lives in its own file under Commands/ and is built from the option groups under
// Options/ that it uses, so its --help lists only what it reads. Parse errors and UserErrors become one line
// on stderr and a non-zero exit code; nothing else is caught, so a real bug keeps its stack trace. Tests call
// Run in-process with their own writers.
using System.CommandLine;
using SimClr.Training.Cli.Commands;

namespace SimClr.Training.Cli;

/// <summary>Where a command writes, the token Ctrl-C cancels, and optional hooks for tests.</summary>
public sealed record CliContext(TextWriter Output, TextWriter Error, CancellationToken Cancel)
{
    public Pretraining.TrainingHooks? Hooks { get; init; }
}

public static class CliApp
{
    public static int Run(string[] args, CliContext context)
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
        root.Add(InfoCommand.Create(context));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string message = string.Join(" ", parsed.Errors[0].Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
            context.Error.WriteLine($"error: {message} (see --help)");
            return (int)ExitCode.BadOption;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = context.Output,
                Error = context.Error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            });
        }
        catch (UserError e)
        {
            context.Error.WriteLine($"error: {e.Message}");
            return (int)e.Code;
        }
    }
}
