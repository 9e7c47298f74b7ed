// The command line: pretrain (also what runs with no command), linear-eval, knn, augment-preview, export,
// info. Parse errors and UserErrors become one line on stderr and a non-zero exit code; nothing else is
// caught, so a real bug keeps its stack trace. Tests call Run in-process with their own writers.
using System.CommandLine;
using SimClr.Training.Config;

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
        var o = new CliOptions();
        var root = new RootCommand("SimClr.Native: SimCLR pretraining and evaluation (CPU or CUDA). With no command, runs `pretrain`. "
            + "With --dataset shapes (the default) a quick CPU preset replaces the paper defaults shown below: ResNet-18 at width 0.125, "
            + "batch 64, 12 epochs, 1 warmup epoch, √B lr scaling with base 0.6, τ 0.2, crops of at least 50%, kNN every 4 epochs, "
            + "30 linear-probe epochs; any option given still wins.");
        var pretrain = new Command("pretrain", "Pretrain an encoder with SimCLR, then evaluate it (linear probe + kNN) beside a random-init encoder");
        var linear = new Command("linear-eval", "Linear evaluation of a checkpoint's frozen encoder (and of a random-init encoder of the same architecture)");
        var knn = new Command("knn", "kNN evaluation (cosine, weighted vote) of a checkpoint's frozen encoder");
        var preview = new Command("augment-preview", "Write a PNG grid of originals beside their two augmented views");
        var export = new Command("export", "Write the encoder alone as safetensors with torchvision ResNet names (fc excluded)");
        var info = new Command("info", "Show the devices this program can use");

        IEnumerable<Option> pretrainOptions = [.. o.DataOptions, .. o.ModelOptions, .. o.TrainOptions, .. o.AugmentOptions, .. o.EvalOptions, .. o.RunOptions,
            o.KnnEvery, o.Eval, o.Resume, o.KeepLast, o.LossEvery, o.StopAfter, o.SyncBn];
        foreach (var opt in pretrainOptions)
        {
            root.Add(opt);
            pretrain.Add(opt);
        }
        foreach (var cmd in new[] { linear, knn })
        {
            cmd.Add(o.Checkpoint);
            foreach (var opt in o.DataOptions.Concat(o.EvalOptions).Concat(o.RunOptions)) cmd.Add(opt);
            cmd.Add(o.Seed);
        }
        foreach (var opt in o.DataOptions.Concat(o.AugmentOptions)) preview.Add(opt);
        preview.Add(o.Seed);
        preview.Add(o.Device);
        preview.Add(o.Output);
        preview.Add(o.Count);
        export.Add(o.Checkpoint);
        export.Add(o.Output);
        root.Add(pretrain);
        root.Add(linear);
        root.Add(knn);
        root.Add(preview);
        root.Add(export);
        root.Add(info);

        root.SetAction(r => Commands.Pretrain(Validated(o.Bind(r)), context));
        pretrain.SetAction(r => Commands.Pretrain(Validated(o.Bind(r)), context));
        linear.SetAction(r => Commands.LinearEval(Validated(o.Bind(r)), Required(r, o.Checkpoint), context));
        knn.SetAction(r => Commands.Knn(Validated(o.Bind(r)), Required(r, o.Checkpoint), context));
        preview.SetAction(r => Commands.AugmentPreview(Validated(o.Bind(r)), r.GetValue(o.Output) ?? "augment-preview.png", r.GetResult(o.Count) is { Implicit: false } ? r.GetValue(o.Count) : 8, context));
        export.SetAction(r => Commands.Export(Required(r, o.Checkpoint), Required(r, o.Output), context));
        info.SetAction(_ => Commands.Info(context));

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

    private static RunConfig Validated(RunConfig c)
    {
        c.Validate();
        return c;
    }

    private static string Required(ParseResult r, Option<string> option) =>
        r.GetValue(option) is { Length: > 0 } v ? v : throw UserError.Option(option.Name, "is required");
}
