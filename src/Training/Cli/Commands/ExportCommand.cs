// export: the encoder (and with --with-head the projection head) of a checkpoint, with torchvision's ResNet
// state_dict names and dtypes (BN counters int64, no fc), for any arch, width and stem. The checkpoint is
// first loaded into the model its own config describes, through the same exact check (names, dtypes,
// shapes, momentum included) that resume and linear-eval use, and the file is written from that model, so a
// checkpoint that does not match its config is refused instead of exported. The output may not name the
// checkpoint itself, however the two paths are spelled. README "Using the encoder elsewhere" loads the file.
using System.CommandLine;
using SimClr.Kernels.Cpu;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Interop;
using SimClr.Training.Pretraining;

namespace SimClr.Training.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("export", "Write the encoder as safetensors with torchvision ResNet names (no fc), checked against the checkpoint's config");
        var checkpoint = new CheckpointOption("Checkpoint to export (a safetensors file written by pretrain)");
        var output = new OutputOption("File to write");
        var withHead = new Option<bool>("--with-head") { Description = "Also write the projection head (head.0.weight, ...)" };
        checkpoint.AddTo(command);
        output.AddTo(command);
        command.Add(withHead);
        command.SetAction(r => Run(checkpoint.Required(r), CommandLineValues.Required(r, output.Output),
            r.GetValue(withHead) ? HeadExport.With : HeadExport.Without, ctx));
        return command;
    }

    public static int Run(string checkpointPath, string outputPath, HeadExport head, CliContext ctx)
    {
        var (file, info) = Checkpoint.Read(checkpointPath);
        OutputPaths.RequireDistinct(outputPath, "--output", checkpointPath, "--checkpoint");
        var config = info.Config;
        using var backend = new CpuBackend<float>();
        using var model = ModelState.Build(backend, config, config.ImageSize, config.ImageSize, batchSize: 1);
        ModelState.Load(file, model.Parameters, momentum: null);
        TorchvisionWeights.WriteExport(outputPath, model, config, head, $"{checkpointPath} ({info.Position})");
        int tensors = model.Parameters.Entries.Count(e => head == HeadExport.With || !e.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal));
        ctx.Output.WriteLine(CommandSupport.Invariant($"wrote {outputPath}: {tensors} tensors ({TorchvisionWeights.ArchName(config.Arch)}, width {config.Width}, {TorchvisionWeights.StemName(config.Stem)} stem")
            + (head == HeadExport.With ? ", projection head included" : "") + $") from {checkpointPath} at {info.Position}");
        return (int)ExitCode.Ok;
    }
}
