// info: the CPU, the CUDA driver and devices, and where each native library was loaded from.
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
        // The first of CudaInfo's lines is its verdict; without a device it is replaced by the plain reason.
        var lines = cuda.ToLines();
        ctx.Output.WriteLine(cuda.Available ? lines[0] : $"no CUDA device: {cuda.Reason}");
        foreach (var line in lines.Skip(1)) ctx.Output.WriteLine(line);
        ctx.Output.WriteLine(cuda.Available ? "--device auto will use cuda:0" : "--device auto will use the CPU");
        return (int)ExitCode.Ok;
    }
}
