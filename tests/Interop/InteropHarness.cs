// Inputs the interop and golden tests share: folders of PNG images in the folder dataset's layout, and
// training checkpoints of any arch, width and stem whose BN layers are not at their initialization (random
// γ and β, running statistics gathered by a few training-mode forwards), so inference-mode BN is exercised
// with statistics of its own. Writing the checkpoint directly is much cheaper than a pretraining run at
// width 1, and it is the same file format (Checkpoint.Write over ModelState.Save).
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Pretraining;
using StbImageWriteSharp;

namespace SimClr.Tests.Interop;

internal static class InteropHarness
{
    /// <summary>root/{train,test}/{a,b}/NN.png: smooth random RGB patterns of <paramref name="size"/> px.
    /// Returns the files in the order the folder reader lists them (split, class, name).</summary>
    public static List<string> WriteImageFolder(string root, int size, int trainPerClass, int testPerClass, int seed)
    {
        var rng = new Random(seed);
        var files = new List<string>();
        foreach (var (split, count) in new[] { ("train", trainPerClass), ("test", testPerClass) })
            foreach (var cls in new[] { "a", "b" })
            {
                string dir = Path.Combine(root, split, cls);
                Directory.CreateDirectory(dir);
                for (int i = 0; i < count; i++)
                {
                    var px = new byte[size * size * 3];
                    double fx = rng.NextDouble() * 0.5, fy = rng.NextDouble() * 0.5;
                    for (int y = 0; y < size; y++)
                        for (int x = 0; x < size; x++)
                            for (int c = 0; c < 3; c++)
                                px[(y * size + x) * 3 + c] = (byte)Math.Clamp(128 + 70 * Math.Sin(fx * x + fy * y + 2 * c + (cls == "b" ? 1.5 : 0)) + rng.Next(-30, 31), 0, 255);
                    string path = Path.Combine(dir, $"{i:D2}.png");
                    using (var f = File.Create(path)) new ImageWriter().WritePng(px, size, size, ColorComponents.RedGreenBlue, f);
                    files.Add(path);
                }
            }
        return files;
    }

    /// <summary>A resolved config for a folder dataset of <paramref name="size"/> px images.</summary>
    public static RunConfig Config(string dataRoot, int size, Architecture arch, double width, StemChoice stem) => new RunConfig
    {
        Dataset = DatasetKind.Folder,
        DataPath = dataRoot,
        ImageSize = size,
        Arch = arch,
        Width = width,
        Stem = stem,
        HeadOut = 32,
        BatchSize = 8,
        Epochs = 1,
        Seed = 3,
    }.Resolve(size);

    /// <summary>Writes a training checkpoint of the model <paramref name="config"/> describes, with random BN
    /// affine parameters and running statistics from <paramref name="forwards"/> training-mode forwards.</summary>
    public static void WriteCheckpoint(string path, RunConfig config, int forwards = 3)
    {
        using var backend = new CpuBackend<float>();
        using var model = ModelState.Build(backend, config, config.ImageSize, config.ImageSize, batchSize: 4);
        var store = model.Parameters;
        var rng = new Random(11);
        foreach (var e in store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter && e.Shape.Rank == 1))
        {
            bool gamma = e.Name.EndsWith(".weight", StringComparison.Ordinal);
            store.SetHost(e.Name, Enumerable.Range(0, (int)e.Elements).Select(_ => gamma ? 0.5f + rng.NextSingle() : 0.4f * rng.NextSingle() - 0.2f).ToArray());
        }
        using var views = backend.Allocate<float>(model.InputShape.Elements);
        var host = new float[views.Length];
        for (int k = 0; k < forwards; k++)
        {
            for (int i = 0; i < host.Length; i++) host[i] = (float)(rng.NextDouble() * 2 - 1) * 1.7f;
            backend.Upload(views.AsTensor(), host);
            model.Forward(views.AsTensor(model.InputShape, Layout.NCHW));
        }
        using var momentum = store.AllocateStateBuffer();
        Checkpoint.Write(path, new CheckpointInfo(config, new TrainingPosition(1, forwards, 0), 1.0, double.NaN), w => ModelState.Save(w, store, momentum));
    }
}
