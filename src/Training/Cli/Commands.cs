// What each command does, once the command line has been parsed and validated into a RunConfig.
using System.Globalization;
using SimClr.Training.Checkpoints;
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static partial class Commands
{
    public static int Info(CliContext ctx)
    {
        ctx.Output.WriteLine($"SimClr.Native {typeof(Commands).Assembly.GetName().Version}, .NET {Environment.Version}, {Environment.ProcessorCount} CPU threads");
        using (var cpu = new Kernels.Cpu.CpuBackend<float>()) ctx.Output.WriteLine($"cpu: {cpu.Info.Description}");
        var cuda = Kernels.Cuda.CudaInfo.Probe();
        // The first of CudaInfo's lines is its verdict; without a device it is replaced by the plain reason.
        var lines = cuda.ToLines();
        ctx.Output.WriteLine(cuda.Available ? lines[0] : $"no CUDA device: {cuda.Reason}");
        foreach (var line in lines.Skip(1)) ctx.Output.WriteLine(line);
        ctx.Output.WriteLine(cuda.Available ? "--device auto will use cuda:0" : "--device auto will use the CPU");
        return (int)ExitCode.Ok;
    }

    /// <summary>Writes the encoder alone with torchvision's ResNet state_dict names and dtypes (BN counters int64,
    /// fc excluded), so torchvision.models.resnetNN(...).load_state_dict(state, strict=False) reports only fc missing.</summary>
    public static int Export(string checkpointPath, string outputPath, CliContext ctx)
    {
        var (file, info) = Checkpoint.Read(checkpointPath);
        if (Path.GetFullPath(outputPath) == Path.GetFullPath(checkpointPath))
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
