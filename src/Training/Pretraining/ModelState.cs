// Builds the SimCLR model a RunConfig describes, and moves its whole state (parameters, BN running
// statistics and counters, LARS momentum) to and from checkpoint tensors. Loading is strict: the file must
// hold exactly the names, dtypes and shapes this model has, or the run stops with one line naming the file.
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;

namespace SimClr.Training.Pretraining;

public static class ModelState
{
    /// <summary>The model for a resolved config, planned for <paramref name="batchSize"/> pairs of H×W views.</summary>
    public static SimClrModel<float> Build(IBackend<float> backend, RunConfig config, int height, int width, int batchSize)
    {
        var modelConfig = new SimClrModelConfig
        {
            Arch = Arch(config),
            Stem = Stem(config),
            WidthMultiplier = config.Width,
            InputChannels = 3,
            ImageHeight = height,
            ImageWidth = width,
            BatchSize = batchSize,
            HeadHiddenDim = config.HeadHidden == 0 ? null : config.HeadHidden,
            HeadOutputDim = config.HeadOut,
            Temperature = config.Temperature ?? throw new InvalidOperationException("resolve the config before building the model"),
            Seed = config.Seed,
        };
        try
        {
            return new SimClrModel<float>(backend, modelConfig);
        }
        catch (ArgumentException e)
        {
            throw new UserError($"cannot build the model: {e.Message}", ExitCode.BadOption);
        }
    }

    public static ResNetArch Arch(RunConfig config) => config.Arch switch
    {
        Architecture.ResNet18 => ResNetArch.ResNet18,
        Architecture.ResNet34 => ResNetArch.ResNet34,
        _ => ResNetArch.ResNet50,
    };

    public static StemKind Stem(RunConfig config) => config.Stem switch
    {
        StemChoice.Cifar => StemKind.Cifar,
        StemChoice.ImageNet => StemKind.ImageNet,
        _ => throw new InvalidOperationException("resolve the config before building the model"),
    };

    /// <summary>Every tensor a checkpoint of this model holds.</summary>
    public static List<ExpectedTensor> Expected(ParameterStore<float> store)
    {
        var list = new List<ExpectedTensor>();
        foreach (var e in store.Entries)
            list.Add(new ExpectedTensor(e.Name, e.Kind == StoreTensorKind.Counter ? SafeDType.I64 : SafeDType.F32, e.Shape.ToArray()));
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            list.Add(new ExpectedTensor(Checkpoint.MomentumPrefix + e.Name, SafeDType.F32, e.Shape.ToArray()));
        return list;
    }

    public static void Save(SafeTensorsWriter w, ParameterStore<float> store, Storage<float> momentum)
    {
        foreach (var e in store.Entries)
        {
            if (e.Kind == StoreTensorKind.Counter) w.Add<long>(e.Name, [store.GetCounter(e.Name)], []);
            else w.Add<float>(e.Name, store.GetHost(e.Name), e.Shape.ToArray());
        }
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
        {
            var view = store.StateView(momentum, e.Name);
            var host = new float[view.Length];
            store.Backend.Download<float>(host, view);
            w.Add<float>(Checkpoint.MomentumPrefix + e.Name, host, e.Shape.ToArray());
        }
    }

    /// <summary>Validates <paramref name="file"/> against the model, then loads it (momentum too when given).</summary>
    public static void Load(SafeTensorsFile file, ParameterStore<float> store, Storage<float>? momentum)
    {
        Checkpoint.RequireExactly(file, Expected(store));
        foreach (var e in store.Entries)
        {
            if (e.Kind == StoreTensorKind.Counter) store.SetCounter(e.Name, file.Read<long>(e.Name)[0]);
            else store.SetHost(e.Name, file.Read<float>(e.Name));
        }
        if (momentum is null) return;
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            store.Backend.Upload(store.StateView(momentum, e.Name), file.Read<float>(Checkpoint.MomentumPrefix + e.Name));
    }
}
