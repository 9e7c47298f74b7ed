// augment-preview: originals beside their two augmented views, as one PNG grid, drawn by the backend's own
// AugmentViews with the run's resolved augmentation (preset for the image size, then each override).
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static partial class Commands
{
    public static int AugmentPreview(RunConfig requested, string output, int count, CliContext ctx)
    {
        if (count < 1) throw UserError.Option("--count", $"must be at least 1, got {count}");
        var data = LoadData(requested);
        var config = requested.Resolve(data.Train.Shape.Height);
        var spec = config.AugmentSpec();
        using var backend = BackendFactory.Create(DeviceRequest.Parse(config.Device), ctx.Output);
        try
        {
            Augmentation.AugmentPreview.Write(output, data.Train, spec, config.Seed, count, backend);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(output, $"cannot be written ({e.Message})");
        }
        ctx.Output.WriteLine($"wrote {output}: {Math.Min(count, data.Train.Count)} images of {data.Train.Name} beside their two views ({config.Augment} augmentation)");
        return (int)ExitCode.Ok;
    }
}
