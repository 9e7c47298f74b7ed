// linear-eval: a linear classifier on a checkpoint's frozen encoder features, beside the same protocol on a
// random-init encoder of the same architecture.
using System.CommandLine;
using SimClr.Training.Cli.Options;

namespace SimClr.Training.Cli.Commands;

internal static class LinearEvalCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("linear-eval", "Linear evaluation of a checkpoint's frozen encoder (and of a random-init encoder of the same architecture)");
        var checkpoint = new CheckpointOption("Checkpoint to evaluate (a safetensors file written by pretrain); or give --init-from");
        var data = new DataOptions();
        var options = new OptionSet(data, new InitFromOptions(), new LinearEvalOptions(), new SeedOptions(), new DeviceOptions());
        checkpoint.AddTo(command);
        options.AddTo(command);
        command.SetAction(r =>
        {
            var config = options.Apply(r, data.Defaults(r));
            config.Validate();
            return CheckpointEvaluation.Run(config, r.GetValue(checkpoint.Checkpoint), ctx, EvalKind.Linear);
        });
        return command;
    }
}
