// Turns --device into a backend. auto = CUDA when a device can be opened, else the CPU (saying why);
// an explicit cuda request that cannot be met is a UserError that says why.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static class BackendFactory
{
    public static IBackend<float> Create(DeviceRequest request, TextWriter log)
    {
        if (request.Choice == DeviceChoice.Cpu) return new CpuBackend<float>();
        var probe = CudaInfo.Probe();
        string? problem = probe.Available ? null : probe.Reason ?? "CUDA libraries are missing";
        if (problem is null)
        {
            try
            {
                return new CudaBackend(request.Ordinal);
            }
            catch (Exception e) when (e is CudaNotAvailableException or NativeCallException or DllNotFoundException)
            {
                problem = e.Message;
            }
        }
        if (request.Choice == DeviceChoice.Cuda)
            throw UserError.Option("--device", $"{request} cannot be used: {problem}");
        log.WriteLine($"device: cpu (no CUDA device: {problem})");
        return new CpuBackend<float>();
    }
}
