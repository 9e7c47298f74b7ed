// --init-from: start the encoder from a torchvision ResNet state_dict saved as safetensors. The file's shapes
// give the arch, width and stem, so no --arch is needed; a command that also offers the model options lists
// this group before them, so an explicit --arch/--width/--stem still wins (and a file that does not fit it is
// refused naming the tensor). The command then calls TorchvisionWeights.ApplyInitFrom once its model is built.
using System.CommandLine;
using SimClr.Training.Checkpoints;
using SimClr.Training.Interop;

namespace SimClr.Training.Cli.Options;

internal sealed class InitFromOptions : OptionGroup
{
    public readonly Option<string> InitFrom;

    public InitFromOptions() =>
        InitFrom = Bound(new Option<string>("--init-from")
        {
            Description = "Start the encoder from a torchvision ResNet-18/34/50 state_dict saved as safetensors (fc is not used; arch, width and stem are read from the file)",
        }, (c, path) =>
        {
            var (arch, width, stem) = TorchvisionWeights.Infer(SafeTensorsFile.Load(path));
            return c with { InitFrom = path, Arch = arch, Width = width, Stem = stem };
        });
}
