// Fuzzing the checkpoint readers in-process. 12,000 safetensors files are made from valid ones by seeded
// mutations of their bytes (bit flips, byte replacements, insertions, deletions, truncations, appends, header
// length edits) and of their JSON header (values swapped for strings, fractions, huge or negative numbers,
// nulls, objects, deep nesting; keys removed or duplicated; dtypes renamed; offsets shifted), each header
// re-framed with a correct length so the semantic checks are reached. Every outcome must be success on a file
// that then reads whole, or the reader's own UserError (one line, naming the file); any other exception fails
// the test with the case number, so a failure reproduces. Truncations and appends can never be valid and must
// be refused. A second, smaller fuzz goes through the whole checkpoint path (Checkpoint.Read, then
// ModelState.Load into a model), mutating the stored config, the metadata and the tensor values.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using SimClr.Kernels.Cpu;
using SimClr.Tests.Data;
using SimClr.Tests.Robustness;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Fuzz;

public class SafeTensorsFuzzTests
{
    private const int Cases = 12_000;

    private static byte[] Base(int variant)
    {
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", "fuzz");
        w.AddMetadata("note", variant == 0 ? "plain" : "ünïcode \u2603");
        w.Add<float>("a", [1f, 2f, 3f, 4f, 5f, 6f], [2, 3]);
        w.Add<long>("n", [42L], []);
        w.Add<int>("b", [7, -8], [2]);
        if (variant == 1)
        {
            w.Add<double>("d", [0.5, -0.25, 1e300], [3, 1]);
            w.Add<byte>("u", [1, 2, 3, 4, 5], [5]);
            w.Add<float>("empty", [], [0, 4]);
        }
        return w.ToBytes();
    }

    private static (byte[] Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (file[8..(8 + n)], file[(8 + n)..]);
    }

    private static byte[] Frame(byte[] header, byte[] data)
    {
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    private static readonly byte[] Interesting = "\"[]{},:-0123456789eE.+ \0\\/nulltruefalse\u00ff"u8.ToArray();

    private static JsonNode? RandomValue(Random rng, int depth = 0) => rng.Next(14) switch
    {
        0 => JsonValue.Create("0"),
        1 => JsonValue.Create(-rng.Next(1, 100)),
        2 => JsonValue.Create(0.5 + rng.Next(10)),
        3 => JsonValue.Create(long.MaxValue),
        4 => JsonValue.Create(ulong.MaxValue),
        5 => JsonValue.Create(1e30),
        6 => null,
        7 => JsonValue.Create(rng.Next(2) == 0),
        8 => new JsonObject { ["x"] = depth < 3 ? RandomValue(rng, depth + 1) : 1 },
        9 => new JsonArray(depth < 3 ? RandomValue(rng, depth + 1) : 1, rng.Next(100)),
        10 => JsonValue.Create(rng.Next(0, 64)),
        11 => JsonValue.Create(new string('9', rng.Next(1, 40))),
        12 => JsonValue.Create(int.MaxValue),
        _ => JsonValue.Create("F32"),
    };

    /// <summary>Every container node of <paramref name="root"/> (objects and arrays), depth first.</summary>
    private static List<JsonNode> Containers(JsonNode root)
    {
        var all = new List<JsonNode>();
        void Walk(JsonNode? n)
        {
            if (n is JsonObject o) { all.Add(o); foreach (var (_, v) in o) Walk(v); }
            else if (n is JsonArray a) { all.Add(a); foreach (var v in a) Walk(v); }
        }
        Walk(root);
        return all;
    }

    private const string DeepMarker = "deep-nesting-goes-here";

    /// <summary>A structural edit of the header's JSON, re-serialized (a correct length is framed around it).</summary>
    private static byte[] MutateJson(Random rng, byte[] header)
    {
        var root = JsonNode.Parse(Encoding.UTF8.GetString(header)) as JsonObject ?? throw new InvalidOperationException("the header is not an object");
        var containers = Containers(root);
        var target = containers[rng.Next(containers.Count)];
        switch (target)
        {
            case JsonObject o when o.Count > 0:
                string key = o.ElementAt(rng.Next(o.Count)).Key;
                switch (rng.Next(5))
                {
                    case 0: o.Remove(key); break;
                    case 1: o[key + (rng.Next(2) == 0 ? "" : "_x")] = RandomValue(rng); break;
                    case 2: o["__metadata__"] = RandomValue(rng); break;
                    case 3: o[key] = rng.Next(2) == 0 ? JsonValue.Create("Q7") : JsonValue.Create("U8"); break;
                    default: o[key] = JsonValue.Create(DeepMarker); break;
                }
                break;
            case JsonArray a when a.Count > 0:
                int at = rng.Next(a.Count);
                switch (rng.Next(4))
                {
                    case 0: a[at] = RandomValue(rng); break;
                    case 1: a.RemoveAt(at); break;
                    case 2: a.Add(RandomValue(rng)); break;
                    default: a[at] = JsonValue.Create((a[at] is JsonValue v && v.TryGetValue(out long l) ? l : 0) + rng.Next(-9, 10)); break;
                }
                break;
        }
        // Nesting deeper than JSON readers accept (64) is spliced in as text: JsonNode cannot write it either.
        int depth = rng.Next(60, 80);
        string text = root.ToJsonString().Replace($"\"{DeepMarker}\"", new string('[', depth) + new string(']', depth));
        if (rng.Next(8) == 0)
        {
            // A duplicate key, which JsonNode cannot hold, written into the text itself.
            int brace = text.IndexOf("{\"", 1, StringComparison.Ordinal);
            if (brace > 0) text = text[..(brace + 1)] + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," + text[(brace + 1)..];
        }
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>What a case did to the file, and whether the result can still be valid.</summary>
    private enum Expect { Either, Invalid }

    private static (byte[] File, string What, Expect Expect) Mutate(Random rng, byte[] valid)
    {
        var (header, data) = Split(valid);
        var file = (byte[])valid.Clone();
        int headerEnd = 8 + header.Length;
        switch (rng.Next(11))
        {
            case 0:
                { int i = rng.Next(file.Length); file[i] ^= (byte)(1 << rng.Next(8)); return (file, $"flip bit at {i}", Expect.Either); }
            case 1:
                { int i = 8 + rng.Next(header.Length); file[i] = Interesting[rng.Next(Interesting.Length)]; return (file, $"header byte {i} = {file[i]}", Expect.Either); }
            case 2:
                {
                    int cut = rng.Next(1, file.Length);
                    return (file[..^cut], $"truncate {cut}", data.Length > 0 ? Expect.Invalid : Expect.Either);
                }
            case 3:
                { int extra = rng.Next(1, 64); return ([.. file, .. new byte[extra]], $"append {extra}", Expect.Invalid); }
            case 4:
                {
                    ulong[] lengths = [0, 1, 2, (ulong)header.Length - 1, (ulong)header.Length + 1, (ulong)file.Length, ulong.MaxValue, (ulong)SafeTensorsFile.MaxHeaderBytes + 1, 1UL << 63, (ulong)rng.Next()];
                    ulong n = lengths[rng.Next(lengths.Length)];
                    BinaryPrimitives.WriteUInt64LittleEndian(file, n);
                    return (file, $"header length {n}", n == (ulong)header.Length ? Expect.Either : Expect.Invalid);
                }
            case 5:
                {
                    int i = rng.Next(header.Length);
                    var h = header.ToList();
                    h.Insert(i, Interesting[rng.Next(Interesting.Length)]);
                    return (Frame([.. h], data), $"insert header byte at {i}", Expect.Either);
                }
            case 6:
                {
                    int i = rng.Next(header.Length);
                    var h = header.ToList();
                    h.RemoveAt(i);
                    return (Frame([.. h], data), $"delete header byte {i}", Expect.Either);
                }
            case 7:
            case 8:
                return (Frame(MutateJson(rng, header), data), "json edit", Expect.Either);
            case 9:
                {
                    if (data.Length == 0) return (file, "no data", Expect.Either);
                    int i = headerEnd + rng.Next(data.Length);
                    file[i] = (byte)rng.Next(256);
                    return (file, $"data byte {i}", Expect.Either);
                }
            default:
                {
                    var (once, what, _) = Mutate(rng, valid);
                    if (once.Length < 8) return (once, what, Expect.Invalid);
                    try
                    {
                        var (h2, d2) = Split(once);
                        return (Frame(MutateJson(rng, h2), d2), what + " + json edit", Expect.Either);
                    }
                    catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException or DecoderFallbackException)
                    {
                        return (once, what, Expect.Either);
                    }
                }
        }
    }

    private static void ReadEverything(SafeTensorsFile f)
    {
        foreach (var t in f.Tensors.Values)
        {
            long n = t.DType switch
            {
                SafeDType.F32 => f.Read<float>(t.Name).LongLength,
                SafeDType.F64 => f.Read<double>(t.Name).LongLength,
                SafeDType.I32 => f.Read<int>(t.Name).LongLength,
                SafeDType.I64 => f.Read<long>(t.Name).LongLength,
                _ => f.Read<byte>(t.Name).LongLength,
            };
            Assert.Equal(t.Elements, n);
        }
    }

    [Fact(Timeout = 300_000)]
    public async Task MutatedHeadersAndBodiesAreReadOrRefusedWithTheReadersOwnError()
    {
        await Task.Yield();
        var bases = new[] { Base(0), Base(1) };
        foreach (var b in bases) ReadEverything(SafeTensorsFile.Parse("base", b));
        int accepted = 0, refused = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < Cases; i++)
        {
            TestContext.Current.CancellationToken.ThrowIfCancellationRequested();
            var rng = new Random(1_000_003 * i + 17);
            var (file, what, expect) = Mutate(rng, bases[i % 2]);
            string name = $"case-{i}.safetensors";
            try
            {
                var f = SafeTensorsFile.Parse(name, file);
                ReadEverything(f);
                Assert.True(expect == Expect.Either, $"case {i} ({what}) cannot be a valid file but was accepted");
                accepted++;
            }
            catch (UserError e)
            {
                Assert.True(e.Message.StartsWith(name, StringComparison.Ordinal), $"case {i} ({what}): the error does not name the file: {e.Message}");
                Assert.DoesNotContain('\n', e.Message);
                Assert.True(e.Message.Length <= UserError.MaxMessageLength, $"case {i}: {e.Message.Length} characters");
                refused++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"case {i} ({what}) threw {e.GetType().Name}, not the reader's own error: {e}");
            }
        }
        TestContext.Current.SendDiagnosticMessage($"safetensors fuzz: {Cases} cases, {accepted} accepted, {refused} refused, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(accepted > Cases / 50, $"only {accepted} mutated files were valid: the fuzz barely reaches the success path");
        Assert.True(refused > Cases / 2, $"only {refused} refusals");
    }

    private static JsonNode? RandomConfigValue(Random rng) => rng.Next(8) switch
    {
        0 => JsonValue.Create("NaN"),
        1 => JsonValue.Create(-1),
        2 => null,
        3 => JsonValue.Create(1e30),
        4 => JsonValue.Create("auto"),
        5 => new JsonObject(),
        6 => JsonValue.Create(0),
        _ => JsonValue.Create(rng.Next(1, 100000)),
    };

    [Fact(Timeout = 300_000)]
    public async Task MutatedCheckpointsAreLoadedWholeOrRefusedWithTheReadersOwnError()
    {
        await Task.Yield();
        using var tmp = new TempDir();
        string run = tmp.File("run");
        var made = Training.Cli.Run(["pretrain", "--shapes-count", "32", "--image-size", "16", "--batch-size", "16", "--width", "0.015625",
            "--head-out", "8", "--head-hidden", "8", "--epochs", "2", "--stop-after", "1", "--eval", "none", "--progress", "quiet", "--device", "cpu", "--out", run]);
        Assert.True(made.Code == 0, made.Err);
        string good = Training.TinyRun.Checkpoint(run, 2);
        var (baseFile, baseInfo) = Checkpoint.Read(good);
        using var backend = new CpuBackend<float>();
        using var model = ModelState.Build(backend, baseInfo.Config, 16, 16, 2);
        using var momentum = model.Parameters.AllocateStateBuffer();
        ModelState.Load(baseFile, model.Parameters, momentum);
        var bytes = File.ReadAllBytes(good);
        string stepsKey = "epoch_step";

        const int checkpointCases = 600;
        int accepted = 0, refused = 0;
        for (int i = 0; i < checkpointCases; i++)
        {
            TestContext.Current.CancellationToken.ThrowIfCancellationRequested();
            var rng = new Random(7_919 * i + 5);
            string path = tmp.File($"ck-{i}.safetensors");
            string what;
            switch (rng.Next(4))
            {
                case 0:
                    {
                        var cfg = JsonNode.Parse(baseFile.Metadata["config"])!.AsObject();
                        var keys = cfg.Select(p => p.Key).ToList();
                        string key = keys[rng.Next(keys.Count)];
                        cfg[key] = RandomConfigValue(rng);
                        what = $"config {key}";
                        Fixtures.Rewrite(good, path, metadata: (k, v) => k == "config" ? cfg.ToJsonString() : v);
                        break;
                    }
                case 1:
                    {
                        var keys = baseFile.Metadata.Keys.ToList();
                        string key = keys[rng.Next(keys.Count)];
                        string[] values = ["", "-1", "NaN", "1e400", "99999999999999999999", "0", "1", "x", " 1", stepsKey];
                        string value = values[rng.Next(values.Length)];
                        what = $"metadata {key} = '{value}'";
                        Fixtures.Rewrite(good, path, metadata: (k, v) => k == key ? value : v);
                        break;
                    }
                case 2:
                    {
                        var names = baseFile.Tensors.Keys.Where(n => baseFile.Tensors[n].DType == SafeDType.F32).ToList();
                        string name = names[rng.Next(names.Count)];
                        float[] poison = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, -1f, 1e38f, 0f];
                        float value = poison[rng.Next(poison.Length)];
                        what = $"{name} = {value}";
                        Fixtures.Rewrite(good, path, floats: (n, v) => { if (n == name) v[rng.Next(v.Length)] = value; return v; });
                        break;
                    }
                default:
                    {
                        var copy = (byte[])bytes.Clone();
                        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(copy);
                        int at = 8 + rng.Next(headerLength);
                        copy[at] = Interesting[rng.Next(Interesting.Length)];
                        what = $"header byte {at}";
                        File.WriteAllBytes(path, copy);
                        break;
                    }
            }
            try
            {
                var (file, info) = Checkpoint.Read(path);
                Checkpoint.RequirePosition(path, info, 2);
                using var m = ModelState.Build(backend, info.Config, 16, 16, 2);
                using var mo = m.Parameters.AllocateStateBuffer();
                ModelState.Load(file, m.Parameters, mo);
                accepted++;
            }
            catch (UserError e)
            {
                Assert.DoesNotContain('\n', e.Message);
                refused++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"checkpoint case {i} ({what}) threw {e.GetType().Name}, not the reader's own error: {e}");
            }
            File.Delete(path);
        }
        TestContext.Current.SendDiagnosticMessage($"checkpoint fuzz: {checkpointCases} cases, {accepted} accepted, {refused} refused");
        Assert.True(accepted > 10 && refused > checkpointCases / 3, $"{accepted} accepted, {refused} refused");
    }
}
