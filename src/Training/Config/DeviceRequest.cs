// Parses --device (auto | cpu | cuda | cuda:N). Which backend actually runs is decided in BackendFactory,
// which knows whether a CUDA device can be opened.
using System.Globalization;
using SimClr.Training.Cli;

namespace SimClr.Training.Config;

public enum DeviceChoice { Auto, Cpu, Cuda }

public readonly record struct DeviceRequest(DeviceChoice Choice, int Ordinal)
{
    public static DeviceRequest Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "auto") return new(DeviceChoice.Auto, 0);
        if (t == "cpu") return new(DeviceChoice.Cpu, 0);
        if (t == "cuda") return new(DeviceChoice.Cuda, 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 0)
            return new(DeviceChoice.Cuda, n);
        throw UserError.Option("--device", $"'{text}' is not one of auto, cpu, cuda, cuda:N");
    }

    public override string ToString() => Choice switch
    {
        DeviceChoice.Auto => "auto",
        DeviceChoice.Cpu => "cpu",
        _ => $"cuda:{Ordinal}",
    };
}
