// augment-preview: originals beside their two augmented views, as one PNG grid with column headers and the
// settings as a caption, drawn by the backend's own AugmentViews with the run's resolved augmentation (preset
// for the image size, then each override). --scale enlarges small images.
using System.CommandLine;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Commands;

internal static class AugmentPreviewCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("augment-preview", "Write a PNG grid of originals beside their two augmented views");
        var data = new DataOptions();
        var preset = new PresetOptions();
        var options = new OptionSet(preset, data, new AugmentOptions(), new SeedOptions(), new DeviceOptions());
        var output = new OutputOption("PNG file to write (default augment-preview.png)");
        var count = new Option<int>("--count") { Description = "Images in the preview grid (default 8)" };
        var scale = new Option<int>("--scale") { Description = "Pixels per view pixel (default: enough for a 32 px view to be about 96 px)" };
        options.AddTo(command);
        output.AddTo(command);
        command.Add(count);
        command.Add(scale);
        command.SetAction(r =>
        {
            var config = options.Apply(r, preset.Start(r, data));
            config.Validate();
            return Run(config, r.GetValue(output.Output) ?? "augment-preview.png", OptionGroup.Given(r, count) ? r.GetValue(count) : 8,
                OptionGroup.Given(r, scale) ? r.GetValue(scale) : 0, ctx);
        });
        return command;
    }

    public static int Run(RunConfig requested, string output, int count, int scale, CliContext ctx)
    {
        if (count < 1) throw UserError.Option("--count", $"must be at least 1, got {count}");
        if (scale < 0 || scale > 32) throw UserError.Option("--scale", $"must lie in [1, 32] (or be left out), got {scale}");
        var images = CommandSupport.LoadImages(requested, ctx.Output).Pretrain;
        var config = requested.Resolve(images.Shape.Height);
        var spec = config.AugmentSpec();
        using var backend = BackendFactory.Create(config, ctx.Output);
        try
        {
            Augmentation.AugmentPreview.Write(output, images, spec, config.Seed, count, backend, scale: scale);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(output, $"cannot be written ({e.Message})");
        }
        ctx.Output.WriteLine($"wrote {output}: {Math.Min(count, images.Count)} images of {images.Name} beside their two views ({config.Augment} augmentation)");
        return (int)ExitCode.Ok;
    }
}
