using System.Buffers.Binary;
using System.Text;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;

namespace SimClr.Tests.Training;

public class SafeTensorsTests
{
    private static byte[] Sample()
    {
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", "test");
        w.Add<float>("a", [1f, 2f, 3f, 4f, 5f, 6f], [2, 3]);
        w.Add<long>("n", [42L], []);
        w.Add<int>("b", [7, -8], [2]);
        return w.ToBytes();
    }

    /// <summary>A file with a hand-written header (data appended), to reach the reader's error paths.</summary>
    internal static byte[] Raw(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        return file;
    }

    [Fact]
    public void RoundTripsValuesShapesAndMetadata()
    {
        var f = SafeTensorsFile.Parse("mem", Sample());
        Assert.Equal("test", f.Metadata["format"]);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], f.Read<float>("a", [2, 3]));
        Assert.Equal([42L], f.Read<long>("n"));
        Assert.Empty(f.Tensors["n"].Shape);
        Assert.Equal([7, -8], f.Read<int>("b"));
        // The data section starts 8-byte aligned (header padded with spaces).
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(Sample()) % 8);
    }

    [Fact]
    public void HeaderLayoutIsTheSafetensorsFormat()
    {
        var bytes = Sample();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd();
        using var doc = System.Text.Json.JsonDocument.Parse(header);
        var a = doc.RootElement.GetProperty("a");
        Assert.Equal("F32", a.GetProperty("dtype").GetString());
        Assert.Equal(0, a.GetProperty("data_offsets")[0].GetInt32());
        Assert.Equal(24, a.GetProperty("data_offsets")[1].GetInt32());
        Assert.Equal(24 + 8 + 8, bytes.Length - 8 - (int)n);
        Assert.Equal(1f, BitConverter.ToSingle(bytes, 8 + (int)n));
    }

    public static TheoryData<string, int, string> CorruptHeaders => new()
    {
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, "gap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "trailing" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "12 bytes" },
        { "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype" },
        { "{\"a\":{\"dtype\":\"0\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "invalid dimension" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "invalid data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "twice" },
        { "{\"__metadata__\":{\"k\":1}}", 0, "not a string" },
        { "{\"a\":", 0, "JSON" },
        { "[1,2]", 0, "not a JSON object" },
    };

    [Theory]
    [MemberData(nameof(CorruptHeaders))]
    public void RejectsCorruptHeadersWithOneClearMessage(string header, int dataBytes, string expected)
    {
        var e = Assert.Throws<UserError>(() => SafeTensorsFile.Parse("bad.safetensors", Raw(header, dataBytes)));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void RejectsOversizedOrTruncatedHeaderLengths()
    {
        var good = Sample();
        var huge = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(huge, SafeTensorsFile.MaxHeaderBytes + 1);
        Assert.Contains("exceeds the limit", Assert.Throws<UserError>(() => SafeTensorsFile.Parse("f", huge)).Message);
        var past = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(past, (ulong)good.Length);
        Assert.Contains("past the end", Assert.Throws<UserError>(() => SafeTensorsFile.Parse("f", past)).Message);
        Assert.Contains("too short", Assert.Throws<UserError>(() => SafeTensorsFile.Parse("f", good[..5])).Message);
        // Any truncation of a valid file is refused.
        for (int cut = 1; cut < good.Length; cut += 7)
            Assert.Throws<UserError>(() => SafeTensorsFile.Parse("f", good[..^cut]));
    }

    [Fact]
    public void ReadChecksDTypeAndShape()
    {
        var f = SafeTensorsFile.Parse("mem", Sample());
        Assert.Contains("dtype", Assert.Throws<UserError>(() => f.Read<int>("a")).Message);
        Assert.Contains("shape", Assert.Throws<UserError>(() => f.Read<float>("a", [3, 2])).Message);
        Assert.Contains("missing", Assert.Throws<UserError>(() => f.Read<float>("zz")).Message);
    }

    [Fact]
    public void AtomicWriteReplacesAndLeavesNoTemporaryFile()
    {
        string dir = Directory.CreateTempSubdirectory("st").FullName;
        try
        {
            string path = Path.Combine(dir, "x.safetensors");
            File.WriteAllText(path, "old");
            var w = new SafeTensorsWriter();
            w.Add<float>("t", [1f], [1]);
            w.WriteAtomic(path);
            Assert.Equal([1f], SafeTensorsFile.Load(path).Read<float>("t"));
            Assert.Single(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, true); }
    }
}
