// info: the CPU, the CUDA driver and devices, each native library once (version and where it was loaded
// from, or every place it was looked for), and which device --device auto picks.
using System.CommandLine;

namespace SimClr.Training.Cli.Commands;

internal static class InfoCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("info", "Show the devices this program can use");
        command.SetAction(_ => Run(ctx));
        return command;
    }

    public static int Run(CliContext ctx)
    {
        ctx.Output.WriteLine($"SimClr.Native {typeof(InfoCommand).Assembly.GetName().Version}, .NET {Environment.Version}, {Environment.ProcessorCount} CPU threads");
        using (var cpu = new Kernels.Cpu.CpuBackend<float>()) ctx.Output.WriteLine($"cpu: {cpu.Info.Description}");
        var cuda = Kernels.Cuda.CudaInfo.Probe();
        // CudaInfo's first line carries the whole reason; here the verdict comes first in a few words, then the
        // driver's search (when the driver is what is missing) and one line per library.
        var lines = cuda.ToLines();
        ctx.Output.WriteLine(cuda.Available ? lines[0] : $"CUDA: not available ({BackendFactory.CudaVerdict(cuda)})");
        if (!cuda.Available && cuda.Reason is { } reason && reason.StartsWith("no CUDA", StringComparison.Ordinal))
            ctx.Output.WriteLine($"  driver: {reason[(reason.IndexOf(':') + 1)..].Trim()}");
        foreach (var line in lines.Skip(1)) ctx.Output.WriteLine(line);
        ctx.Output.WriteLine(cuda.Available ? "--device auto will use cuda:0" : "--device auto will use the CPU");
        return (int)ExitCode.Ok;
    }
}
