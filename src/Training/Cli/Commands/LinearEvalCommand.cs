// linear-eval: a linear classifier on a checkpoint's frozen encoder features, beside the same protocol on a
// random-init encoder of the same architecture.
using System.CommandLine;
using SimClr.Training.Cli.Options;

namespace SimClr.Training.Cli.Commands;

internal static class LinearEvalCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("linear-eval", "Linear evaluation of a checkpoint's frozen encoder (and of a random-init encoder of the same architecture); "
            + "every setting not given is the checkpoint's, and images of another size are resized to the encoder's input");
        var checkpoint = new CheckpointOption("Checkpoint to evaluate (a safetensors file written by pretrain); or give --init-from");
        var data = new DataOptions(DataRole.Evaluation);
        var init = new InitFromOptions();
        var options = new OptionSet(data, init, new LinearEvalOptions(DefaultsFrom.Checkpoint), new SeedOptions(DefaultsFrom.Checkpoint), new DeviceOptions(), new ProgressOptions());
        var output = new EvalOutputOption("Folder to write summary.json and embedding.png into (nothing is written without it)");
        checkpoint.AddTo(command);
        options.AddTo(command);
        output.AddTo(command);
        command.SetAction(r => CheckpointEvaluation.Run(r, r.GetValue(checkpoint.Checkpoint), init, data, options, r.GetValue(output.Out), ctx, EvalKind.Linear));
        return command;
    }
}
