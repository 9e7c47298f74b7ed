// Builds the SimCLR model a RunConfig describes, and moves its whole state (parameters, BN running
// statistics and counters, LARS momentum) to and from checkpoint tensors. Loading is strict, and it is the
// one validation every reader of a checkpoint goes through: the file must hold exactly the names, dtypes and
// shapes this model has, every float (weights, BN statistics, momentum) must be finite, BN variances must not
// be negative and counters must not be negative, or the command stops with one line naming the file and the
// tensor, before any value reaches the model.
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
        catch (OutOfMemoryException)
        {
            throw new UserError($"cannot build the model: not enough memory for batch {batchSize} at {height}x{width} (width {config.Width}); lower --batch-size or --width", ExitCode.BadOption);
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
        var list = store.Entries.Select(ExpectedOf).ToList();
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            list.Add(new ExpectedTensor(Checkpoint.MomentumPrefix + e.Name, SafeDType.F32, e.Shape.ToArray()));
        return list;
    }

    /// <summary>How a checkpoint stores one entry of the store: counters as int64 scalars, the rest as float32.</summary>
    public static ExpectedTensor ExpectedOf(StoreEntry e) =>
        new(e.Name, e.Kind == StoreTensorKind.Counter ? SafeDType.I64 : SafeDType.F32, e.Shape.ToArray());

    public static void Save(SafeTensorsWriter w, ParameterStore<float> store, Storage<float> momentum) => Snapshot(store, momentum)(w);

    /// <summary>Copies the whole state to the host now and returns what adds it to a checkpoint later, so a checkpoint
    /// can hold the state from before a step that is still running (an abandoned CPU step on Ctrl-C).</summary>
    public static Action<SafeTensorsWriter> Snapshot(ParameterStore<float> store, Storage<float> momentum)
    {
        var adds = new List<Action<SafeTensorsWriter>>();
        foreach (var e in store.Entries)
        {
            int[] shape = e.Shape.ToArray();
            if (e.Kind == StoreTensorKind.Counter)
            {
                long counter = store.GetCounter(e.Name);
                adds.Add(w => w.Add<long>(e.Name, [counter], []));
            }
            else
            {
                var values = store.GetHost(e.Name);
                adds.Add(w => w.Add<float>(e.Name, values, shape));
            }
        }
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
        {
            var view = store.StateView(momentum, e.Name);
            var host = new float[view.Length];
            store.Backend.Download<float>(host, view);
            int[] shape = e.Shape.ToArray();
            adds.Add(w => w.Add<float>(Checkpoint.MomentumPrefix + e.Name, host, shape));
        }
        return w => { foreach (var add in adds) add(w); };
    }

    /// <summary>Every tensor of a checkpoint, read and checked as a whole: counters, parameter and buffer values,
    /// and momentum by entry name.</summary>
    public sealed record ValidatedState(IReadOnlyDictionary<string, long> Counters, IReadOnlyDictionary<string, float[]> Values,
        IReadOnlyDictionary<string, float[]> Momenta);

    /// <summary>Reads <paramref name="file"/> as a checkpoint of the model <paramref name="store"/> holds: exactly its
    /// names, dtypes and shapes (and their momentum), every float finite, no negative variance or batch counter.
    /// Momentum is checked even where it will not be loaded (evaluation): a checkpoint is valid as a whole or not
    /// at all.</summary>
    public static ValidatedState Validate(SafeTensorsFile file, ParameterStore<float> store)
    {
        Checkpoint.RequireExactly(file, Expected(store));
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        var values = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var e in store.Entries)
        {
            if (e.Kind == StoreTensorKind.Counter)
            {
                long n = file.Read<long>(e.Name)[0];
                if (n < 0) throw UserError.File(file.Path, $"tensor '{e.Name}' is {n}; a batch counter cannot be negative");
                counters[e.Name] = n;
                continue;
            }
            var v = Checkpoint.ReadFinite(file, e.Name);
            if (e.Kind == StoreTensorKind.Buffer && e.Name.EndsWith(".running_var", StringComparison.Ordinal) && Array.FindIndex(v, x => x < 0) is int bad and >= 0)
                throw UserError.File(file.Path, $"tensor '{e.Name}' holds the variance {v[bad]} at element {bad}; a variance cannot be negative");
            values[e.Name] = v;
        }
        var momenta = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter))
            momenta[e.Name] = Checkpoint.ReadFinite(file, Checkpoint.MomentumPrefix + e.Name);
        return new ValidatedState(counters, values, momenta);
    }

    /// <summary>Validates <paramref name="file"/> against the model, then loads it (momentum too when given).
    /// Every tensor is checked before the first one is copied, so a refused file leaves the model as it was.</summary>
    public static void Load(SafeTensorsFile file, ParameterStore<float> store, Storage<float>? momentum)
    {
        var state = Validate(file, store);
        foreach (var (name, n) in state.Counters) store.SetCounter(name, n);
        foreach (var (name, v) in state.Values) store.SetHost(name, v);
        if (momentum is null) return;
        foreach (var (name, v) in state.Momenta) store.Backend.Upload(store.StateView(momentum, name), v);
    }
}
