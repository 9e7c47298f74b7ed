// embed: what each row is (features, labels, projections, splits, indices or files) and that the features
// are exactly what evaluation extracts from the same checkpoint (the golden feature test then ties both to
// torchvision).
using System.Text.Json;
using SimClr.Kernels.Cpu;
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Interop;

public class EmbedTests
{
    [Fact]
    public void EmbedOfAShapesRunHoldsEvaluationsFeaturesWithLabelsAndIndices()
    {
        string dir = TinyRun.NewDir("embed");
        try
        {
            Assert.Equal(0, Cli.Run(TinyRun.Args(dir, 1)).Code);
            string ckpt = TinyRun.Checkpoint(dir, 6), output = Path.Combine(dir, "features.safetensors");
            var r = Cli.Run("embed", "--checkpoint", ckpt, "--output", output, "--head", "--progress", "plain", "--device", "cpu");
            Assert.True(r.Code == 0, r.Err);
            var f = SafeTensorsFile.Load(output);

            // The checkpoint's own data: 96 generated training shapes and the test split, at 16 px.
            var (file, info) = Checkpoint.Read(ckpt);
            var data = DatasetCatalog.Load(new DatasetOptions(DatasetKind.Shapes, null, 16, 96, 120, info.Config.Seed));
            int n = data.Train.Count + data.Test.Count;
            Assert.Contains($"wrote {output}: {n} rows", r.Out);
            Assert.Equal([n, 64], f.Tensors["features"].Shape);
            Assert.Equal([n, 16], f.Tensors["projections"].Shape);
            Assert.Equal([.. data.Train.Labels.Concat(data.Test.Labels).Select(l => (long)l)], f.Read<long>("labels"));
            Assert.Equal($"{{\"train\":[0,{data.Train.Count}],\"test\":[{data.Train.Count},{n}]}}", f.Metadata["splits"]);
            Assert.Equal([.. Enumerable.Range(0, data.Train.Count).Concat(Enumerable.Range(0, data.Test.Count))], JsonSerializer.Deserialize<int[]>(f.Metadata["indices"])!);
            Assert.Equal("[0.4914,0.4822,0.4465]", f.Metadata["mean"]);
            Assert.Equal(Path.GetFullPath(ckpt), f.Metadata["checkpoint"]);
            Assert.Equal(info.Config.ToJson(), f.Metadata["config"]);
            Assert.Equal(data.Train.ClassNames, JsonSerializer.Deserialize<string[]>(f.Metadata["classes"])!);

            using var backend = new CpuBackend<float>();
            using var model = ModelState.Build(backend, info.Config, 16, 16, 16);
            ModelState.Load(file, model.Parameters, momentum: null);
            var (train, test) = FeatureExtractor.Extract(backend, model, info.Config, data);
            Assert.Equal([.. train.Features, .. test.Features], f.Read<float>("features"));

            var testOnly = Cli.Run("embed", "--checkpoint", ckpt, "--output", output, "--split", "test", "--progress", "quiet", "--device", "cpu");
            Assert.True(testOnly.Code == 0, testOnly.Err);
            var t = SafeTensorsFile.Load(output);
            Assert.Equal(test.Features, t.Read<float>("features"));
            Assert.False(t.Tensors.ContainsKey("projections"));
            Assert.Equal("0", t.Metadata["projection_dim"]);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void EmbedOfAFolderNamesEachRowsImageFile()
    {
        using var dir = new Data.TempDir();
        string photos = dir.Sub("photos"), ckpt = dir.File("ckpt.safetensors"), output = dir.File("features.safetensors");
        var files = InteropHarness.WriteImageFolder(photos, 16, trainPerClass: 2, testPerClass: 1, seed: 4);
        InteropHarness.WriteCheckpoint(ckpt, InteropHarness.Config(photos, 16, Architecture.ResNet18, 0.125, StemChoice.Cifar), forwards: 1);
        foreach (var (split, expected) in new[] { ("all", files), ("train", files.Take(4).ToList()), ("test", files.Skip(4).ToList()) })
        {
            var r = Cli.Run("embed", "--checkpoint", ckpt, "--output", output, "--split", split, "--progress", "quiet", "--device", "cpu");
            Assert.True(r.Code == 0, r.Err);
            var f = SafeTensorsFile.Load(output);
            Assert.Equal(Path.GetFullPath(photos), f.Metadata["root"]);
            Assert.Equal([.. expected.Select(p => Path.GetRelativePath(photos, p))], JsonSerializer.Deserialize<string[]>(f.Metadata["files"])!);
            Assert.Equal([.. expected.Select(p => p.Contains($"{Path.DirectorySeparatorChar}b{Path.DirectorySeparatorChar}") ? 1L : 0L)], f.Read<long>("labels"));
            Assert.False(f.Metadata.ContainsKey("indices"));
        }

        // --folder-labels none reads the same folder as unlabeled images: no labels tensor, a row per file.
        var unlabeled = Cli.Run("embed", "--checkpoint", ckpt, "--output", output, "--folder-labels", "none", "--progress", "quiet", "--device", "cpu");
        Assert.True(unlabeled.Code == 0, unlabeled.Err);
        var u = SafeTensorsFile.Load(output);
        Assert.False(u.Tensors.ContainsKey("labels"));
        Assert.Equal(files.Count, u.Tensors["features"].Shape[0]);
        Assert.Equal(files.Count, JsonSerializer.Deserialize<string[]>(u.Metadata["files"])!.Length);
    }
}
