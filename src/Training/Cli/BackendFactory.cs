// Turns --device into a backend. auto = CUDA when a device can be opened, else the CPU; an explicit
// cuda request that cannot be met is a UserError that says why.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static class BackendFactory
{
    /// <summary>Why CUDA cannot be used here, or null when it can.</summary>
    public static string? CudaUnavailableReason() =>
        "this build has no CUDA backend wired into the trainer yet";

    public static IBackend<float> Create(DeviceRequest request, TextWriter log)
    {
        switch (request.Choice)
        {
            case DeviceChoice.Cuda:
                throw UserError.Option("--device", $"{request} requested but no CUDA device is usable: {CudaUnavailableReason()}");
            case DeviceChoice.Auto:
                log.WriteLine($"device: cpu (no CUDA: {CudaUnavailableReason()})");
                return new CpuBackend<float>();
            default:
                return new CpuBackend<float>();
        }
    }
}
