// export: the encoder alone with torchvision's ResNet state_dict names and dtypes (BN counters int64, fc
// excluded), so torchvision.models.resnetNN(...).load_state_dict(state, strict=False) reports only fc missing.
using System.CommandLine;
using System.Globalization;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("export", "Write the encoder alone as safetensors with torchvision ResNet names (fc excluded)");
        var checkpoint = new CheckpointOption("Checkpoint to export (a safetensors file written by pretrain)");
        var output = new OutputOption("File to write");
        checkpoint.AddTo(command);
        output.AddTo(command);
        command.SetAction(r => Run(checkpoint.Required(r), CommandLineValues.Required(r, output.Output), ctx));
        return command;
    }

    public static int Run(string checkpointPath, string outputPath, CliContext ctx)
    {
        var (file, info) = Checkpoint.Read(checkpointPath);
        if (Io.SafeFile.SameFile(outputPath, checkpointPath))
            throw UserError.Option("--output", "must differ from --checkpoint (the checkpoint would be overwritten)");
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", Checkpoint.EncoderFormat);
        w.AddMetadata("format_version", RunConfig.FormatVersion.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("config", info.Config.ToJson());
        w.AddMetadata("arch", info.Config.Arch.ToString().ToLowerInvariant());
        int count = 0;
        foreach (var t in file.Tensors.Values.OrderBy(t => t.Begin))
        {
            if (t.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal) || t.Name.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal)
                || t.Name.StartsWith("fc.", StringComparison.Ordinal)) continue;
            if (t.DType == SafeDType.I64) w.Add<long>(t.Name, file.Read<long>(t.Name), t.Shape);
            else w.Add<float>(t.Name, file.Read<float>(t.Name), t.Shape);
            count++;
        }
        if (count == 0) throw UserError.File(checkpointPath, "holds no encoder tensors");
        try { w.WriteAtomic(outputPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(outputPath, $"cannot be written ({e.Message})");
        }
        ctx.Output.WriteLine($"wrote {outputPath}: {count} encoder tensors ({info.Config.Arch}, width {info.Config.Width}, {info.Config.Stem} stem) from {checkpointPath} at {info.Position}");
        return (int)ExitCode.Ok;
    }
}
