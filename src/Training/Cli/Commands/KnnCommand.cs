// knn: the weighted kNN vote (cosine similarity, temperature) on a checkpoint's frozen encoder features,
// beside the same vote on a random-init encoder of the same architecture.
using System.CommandLine;
using SimClr.Training.Cli.Options;

namespace SimClr.Training.Cli.Commands;

internal static class KnnCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("knn", "kNN evaluation (cosine, weighted vote) of a checkpoint's frozen encoder");
        var checkpoint = new CheckpointOption("Checkpoint to evaluate (a safetensors file written by pretrain); or give --init-from");
        var data = new DataOptions();
        var options = new OptionSet(data, new InitFromOptions(), new KnnOptions(), new SeedOptions(), new DeviceOptions());
        checkpoint.AddTo(command);
        options.AddTo(command);
        command.SetAction(r =>
        {
            var config = options.Apply(r, data.Defaults(r));
            config.Validate();
            return CheckpointEvaluation.Run(config, r.GetValue(checkpoint.Checkpoint), ctx, EvalKind.Knn);
        });
        return command;
    }
}
