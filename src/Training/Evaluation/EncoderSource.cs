// Where an evaluation's encoder comes from. linear-eval, knn and finetune do not care whether the weights are a
// SimCLR checkpoint or torchvision weights (--init-from): they need the
// encoder's config (architecture, width, stem, input size and the normalization its inputs had) and a way to
// write its weights into a parameter store. A checkpoint is validated as a whole against the model its config
// describes (encoder, head and momentum: names, dtypes, shapes) before any tensor is used, and then only the
// encoder's tensors (torchvision names, BN statistics and counters included) are loaded.
using SimClr.Kernels.Cpu;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Interop;
using SimClr.Training.Pretraining;

namespace SimClr.Training.Evaluation;

public sealed class EncoderSource
{
    private readonly Action<ParameterStore<float>> _load;

    public EncoderSource(string path, string description, RunConfig config, Action<ParameterStore<float>> load)
    {
        Path = path;
        Description = description;
        Config = config;
        _load = load;
    }

    /// <summary>The file the weights come from (recorded in summaries).</summary>
    public string Path { get; }
    /// <summary>One phrase for logs: the file and where its run stood.</summary>
    public string Description { get; }
    /// <summary>The resolved config the encoder was built with: arch, width, stem, ImageSize, augmentation
    /// (whose normalization evaluation reuses), seed, and the run's own evaluation settings.</summary>
    public RunConfig Config { get; }

    /// <summary>Writes the encoder's tensors into <paramref name="store"/>, which must hold an encoder of
    /// <see cref="Config"/>'s architecture; entries outside the encoder (a head, a classifier) are left as they are.</summary>
    public void LoadEncoder(ParameterStore<float> store) => _load(store);

    public static EncoderSource FromCheckpoint(string path)
    {
        var (file, info) = Checkpoint.Read(path);
        var config = info.Config;
        var state = Validated(file, config);
        return new EncoderSource(path, $"{path} ({info.Position})", config, store =>
        {
            foreach (var e in store.Entries.Where(e => !e.Name.StartsWith(Checkpoint.HeadPrefix, StringComparison.Ordinal) && !e.Name.StartsWith(ClassifierNetwork<float>.ClassifierPrefix, StringComparison.Ordinal)))
            {
                if (!file.Tensors.TryGetValue(e.Name, out var t) || !t.Shape.SequenceEqual(e.Shape.ToArray()))
                    throw UserError.File(path, $"tensor '{e.Name}' is missing or has another shape: the checkpoint's encoder does not match this model");
                if (e.Kind == StoreTensorKind.Counter) store.SetCounter(e.Name, state.Counters[e.Name]);
                else store.SetHost(e.Name, state.Values[e.Name]);
            }
        });
    }

    /// <summary>--init-from: a torchvision ResNet state_dict (Interop/TorchvisionWeights). <paramref name="config"/> is
    /// the command line's, resolved, with the arch, width and stem the file's shapes gave; the file is checked
    /// against the model when it is loaded (fc not used, a missing head keeps its init).</summary>
    public static EncoderSource FromInitFrom(RunConfig config, TextWriter log)
    {
        string path = config.InitFrom ?? throw new ArgumentException("the config names no --init-from file", nameof(config));
        return new EncoderSource(path, $"{path} (torchvision weights)", config, store => TorchvisionWeights.ApplyInitFrom(config, store, log));
    }

    /// <summary>The whole checkpoint checked against the SimCLR model <paramref name="config"/> describes (its
    /// parameter store registered on the CPU, never allocated): encoder, head and momentum, finite values
    /// (ModelState.Validate), before anything of it is used.</summary>
    private static ModelState.ValidatedState Validated(SafeTensorsFile file, RunConfig config)
    {
        using var cpu = new CpuBackend<float>();
        using var store = new ParameterStore<float>(cpu);
        try
        {
            var encoder = new ResNet<float>(store, ModelState.Arch(config), ModelState.Stem(config), config.Width);
            _ = new ProjectionHead<float>(store, encoder.FeatureDim, config.HeadHidden == 0 ? encoder.FeatureDim : config.HeadHidden, config.HeadOut, 2);
        }
        catch (ArgumentException e)
        {
            throw new UserError($"cannot build the checkpoint's model: {e.Message}", ExitCode.BadInput);
        }
        return ModelState.Validate(file, store);
    }
}
