// augment-preview: originals beside their two augmented views, as one PNG grid.
using SimClr.Training.Config;

namespace SimClr.Training.Cli;

public static partial class Commands
{
    public static int AugmentPreview(RunConfig config, string output, int count, CliContext ctx) =>
        throw new UserError("augment-preview is waiting for the augmentation preview writer", ExitCode.BadOption);
}
