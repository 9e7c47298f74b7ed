// The encoder in torchvision's own format, both ways. The parameter store already uses torchvision's ResNet
// state_dict names ("conv1.weight", "layer1.0.bn1.running_var", ..., counters as int64 scalars), so the
// mapping is the identity on names; what this file owns is which tensors cross and how they are checked.
//   export  every encoder entry of a model that was loaded (and so validated) from a checkpoint, plus the
//           projection head ("head.*") on request, with metadata that says how to rebuild and feed it:
//           arch, width, stem, feature_dim, image_size, mean, std, head layout, the source config.
//   import  a torchvision ResNet state_dict saved as safetensors (--init-from): every encoder entry must be
//           there with the model's dtype and shape; "fc.*" is allowed and never loaded (a new task needs a new
//           classifier); "head.*" is loaded when the file has it and the model has a head, otherwise the head
//           keeps its initialization. Anything else is refused with one line naming the tensor, through the
//           same exact-match check checkpoints use.
//   infer   arch, width and stem read off a state_dict's shapes, so --init-from needs no --arch.
using System.Globalization;
using System.Text.Json;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Pretraining;

namespace SimClr.Training.Interop;

/// <summary>Whether an export carries the projection head besides the encoder.</summary>
public enum HeadExport { Without, With }

/// <summary>What an --init-from load did: tensors loaded, and whether the file's head and fc were used.</summary>
public sealed record InitFromReport(int Loaded, bool HeadLoaded, bool FcIgnored);

public static class TorchvisionWeights
{
    public const string FcPrefix = "fc.";

    public static string ArchName(Architecture a) => a switch
    {
        Architecture.ResNet18 => "resnet18",
        Architecture.ResNet34 => "resnet34",
        _ => "resnet50",
    };

    public static string StemName(StemChoice s) => s switch
    {
        StemChoice.Cifar => "cifar",
        StemChoice.ImageNet => "imagenet",
        _ => throw new InvalidOperationException("resolve the config before naming its stem"),
    };

    private static bool IsHead(string name) => name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal);

    /// <summary>Writes the encoder of <paramref name="model"/> (and its head with <see cref="HeadExport.With"/>)
    /// with torchvision names, and the metadata a Python loader needs.</summary>
    public static void WriteExport(string path, SimClrModel<float> model, RunConfig config, HeadExport head, string source)
    {
        var store = model.Parameters;
        var spec = config.AugmentSpec();
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", Checkpoint.EncoderFormat);
        w.AddMetadata("format_version", RunConfig.FormatVersion.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("arch", ArchName(config.Arch));
        w.AddMetadata("width", config.Width.ToString("R", CultureInfo.InvariantCulture));
        w.AddMetadata("stem", StemName(config.Stem));
        w.AddMetadata("feature_dim", model.FeatureDim.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("image_size", config.ImageSize.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("mean", JsonSerializer.Serialize(new[] { spec.MeanR, spec.MeanG, spec.MeanB }));
        w.AddMetadata("std", JsonSerializer.Serialize(new[] { spec.StdR, spec.StdG, spec.StdB }));
        w.AddMetadata("head", head == HeadExport.With ? "included" : "none");
        if (head == HeadExport.With)
        {
            w.AddMetadata("head_layers", model.Head.LinearLayers.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("head_hidden", model.Head.HiddenDim.ToString(CultureInfo.InvariantCulture));
            w.AddMetadata("head_out", model.Head.OutDim.ToString(CultureInfo.InvariantCulture));
        }
        w.AddMetadata("source", source);
        w.AddMetadata("config", config.ToJson());
        foreach (var e in store.Entries)
        {
            if (IsHead(e.Name) && head == HeadExport.Without) continue;
            if (e.Kind == StoreTensorKind.Counter) w.Add<long>(e.Name, [store.GetCounter(e.Name)], []);
            else w.Add<float>(e.Name, store.GetHost(e.Name), e.Shape.ToArray());
        }
        try { w.WriteAtomic(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(path, $"cannot be written ({e.Message})");
        }
    }

    /// <summary>Loads a torchvision ResNet state_dict into <paramref name="store"/> (see the file header for
    /// what may differ); any other difference is one UserError naming the file and the tensor.</summary>
    public static InitFromReport Load(SafeTensorsFile file, ParameterStore<float> store, string modelDescription)
    {
        bool storeHasHead = store.Entries.Any(e => IsHead(e.Name));
        bool loadHead = storeHasHead && file.Tensors.Keys.Any(IsHead);
        var entries = store.Entries.Where(e => !e.Name.StartsWith(FcPrefix, StringComparison.Ordinal) && (loadHead || !IsHead(e.Name))).ToList();
        try
        {
            Checkpoint.RequireExactly(file, entries.Select(ModelState.ExpectedOf).ToList(),
                name => name.StartsWith(FcPrefix, StringComparison.Ordinal) || (!loadHead && IsHead(name)));
        }
        catch (UserError e)
        {
            throw new UserError($"{e.Message} (the model is {modelDescription}; --init-from takes a torchvision ResNet state_dict saved as safetensors)", e.Code);
        }
        // Every value is read and checked (finite; counters not negative) before the first one is copied.
        var counters = new List<(string Name, long Value)>();
        var values = new List<(string Name, float[] Value)>();
        foreach (var e in entries)
        {
            if (e.Kind != StoreTensorKind.Counter)
            {
                values.Add((e.Name, Checkpoint.ReadFinite(file, e.Name)));
                continue;
            }
            long n = file.Read<long>(e.Name)[0];
            if (n < 0) throw UserError.File(file.Path, $"tensor '{e.Name}' is {n}; a batch counter cannot be negative");
            counters.Add((e.Name, n));
        }
        foreach (var (name, n) in counters) store.SetCounter(name, n);
        foreach (var (name, v) in values) store.SetHost(name, v);
        return new InitFromReport(entries.Count, loadHead, file.Tensors.Keys.Any(k => k.StartsWith(FcPrefix, StringComparison.Ordinal)));
    }

    /// <summary>--init-from for any command that builds a model: when <paramref name="config"/> names a file,
    /// loads it into <paramref name="store"/> and says in one line what was loaded.</summary>
    public static void ApplyInitFrom(RunConfig config, ParameterStore<float> store, TextWriter log)
    {
        if (config.InitFrom is not { } path) return;
        string model = $"{ArchName(config.Arch)} at width {config.Width.ToString(CultureInfo.InvariantCulture)} with the {StemName(config.Stem)} stem";
        var report = Load(SafeTensorsFile.Load(path), store, model);
        log.WriteLine($"initialized {model} from {path}: {report.Loaded} tensors"
            + (report.HeadLoaded ? ", projection head included" : "")
            + (report.FcIgnored ? "; its fc layer is not used" : ""));
    }

    /// <summary>The arch, width and stem of the ResNet whose state_dict <paramref name="file"/> holds:
    /// conv1.weight [64·w, 3, k, k] gives the width and the stem (k = 7 ImageNet, 3 CIFAR), layer1.0.conv3
    /// marks a bottleneck ResNet-50, and the block count of layer3 tells ResNet-18 (2) from -34 (6).</summary>
    public static (Architecture Arch, double Width, StemChoice Stem) Infer(SafeTensorsFile file)
    {
        UserError Bad(string problem) => UserError.File(file.Path, $"{problem}; --init-from takes a torchvision ResNet-18/34/50 state_dict saved as safetensors");
        if (!file.Tensors.TryGetValue("conv1.weight", out var conv1)) throw Bad("tensor 'conv1.weight' is missing");
        if (conv1.Shape.Length != 4 || conv1.Shape[1] != 3 || conv1.Shape[2] != conv1.Shape[3] || conv1.Shape[2] is not (3 or 7))
            throw Bad($"tensor 'conv1.weight' has shape {conv1.ShapeText}, expected [64·width, 3, 7, 7] (ImageNet stem) or [64·width, 3, 3, 3] (CIFAR stem)");
        var stem = conv1.Shape[2] == 7 ? StemChoice.ImageNet : StemChoice.Cifar;
        double width = conv1.Shape[0] / 64.0;
        int Blocks(int layer)
        {
            int n = 0;
            while (file.Tensors.ContainsKey($"layer{layer}.{n}.conv1.weight")) n++;
            return n;
        }
        bool bottleneck = file.Tensors.ContainsKey("layer1.0.conv3.weight");
        int[] blocks = [Blocks(1), Blocks(2), Blocks(3), Blocks(4)];
        Architecture? arch = (bottleneck, blocks) switch
        {
            (false, [2, 2, 2, 2]) => Architecture.ResNet18,
            (false, [3, 4, 6, 3]) => Architecture.ResNet34,
            (true, [3, 4, 6, 3]) => Architecture.ResNet50,
            _ => null,
        };
        return arch is { } a ? (a, width, stem)
            : throw Bad($"its layers hold {string.Join("/", blocks)} {(bottleneck ? "bottleneck" : "basic")} blocks, which is not ResNet-18 (2/2/2/2 basic), -34 (3/4/6/3 basic) or -50 (3/4/6/3 bottleneck)");
    }
}
