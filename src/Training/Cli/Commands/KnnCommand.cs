// knn: the weighted kNN vote (cosine similarity, temperature) on a checkpoint's frozen encoder features,
// beside the same vote on a random-init encoder of the same architecture.
using System.CommandLine;
using SimClr.Training.Cli.Options;

namespace SimClr.Training.Cli.Commands;

internal static class KnnCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("knn", "kNN evaluation (cosine, weighted vote) of a checkpoint's frozen encoder; every setting not given is the checkpoint's");
        var checkpoint = new CheckpointOption("Checkpoint to evaluate (a safetensors file written by pretrain); or give --init-from");
        var data = new DataOptions(DataRole.Evaluation);
        var init = new InitFromOptions();
        var options = new OptionSet(data, init, new KnnOptions(DefaultsFrom.Checkpoint), new SeedOptions(DefaultsFrom.Checkpoint), new DeviceOptions(), new ProgressOptions());
        var output = new EvalOutputOption("Folder to write summary.json and embedding.png into (nothing is written without it)");
        checkpoint.AddTo(command);
        options.AddTo(command);
        output.AddTo(command);
        command.SetAction(r => CheckpointEvaluation.Run(r, r.GetValue(checkpoint.Checkpoint), init, data, options, r.GetValue(output.Out), ctx, EvalKind.Knn));
        return command;
    }
}
