// TensorBoard event file of a run (`tensorboard --logdir runs` shows every run folder as a run): one
// events.out.tfevents.<unix time>.<host> file in the run folder, holding every metrics record as scalars
// tagged "<kind>/<name>" (train/loss, train/lr, epoch/loss, epoch/images_per_second, knn/knn_top1,
// eval/linear_top1, ...; a "step" record is "train"), at the record's step and wall time. Accuracies are
// fractions, as in metrics.jsonl. The file is TFRecord framing around tensorflow.Event protos:
//   uint64 length | uint32 masked CRC32C of the length bytes | data | uint32 masked CRC32C of data
// (little-endian; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8), the first record the file_version event
// "brain.Event:2". The protos are written field by field with Google.Protobuf's CodedOutputStream:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// A resumed run rewrites the file from the records it keeps, so the file always matches metrics.jsonl.
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using Google.Protobuf;

using SimClr.Training.Io;

namespace SimClr.Training.Runs;

public sealed class TensorBoardLog
{
    public const string FileVersion = "brain.Event:2";
    public const string FilePrefix = "events.out.tfevents.";

    public TensorBoardLog(string directory)
    {
        Path = Directory.Exists(directory) ? Directory.EnumerateFiles(directory, FilePrefix + "*").Order(StringComparer.Ordinal).FirstOrDefault() ?? "" : "";
        if (Path.Length == 0)
            Path = System.IO.Path.Combine(directory, string.Create(CultureInfo.InvariantCulture,
                $"{FilePrefix}{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.MachineName}"));
    }

    public string Path { get; }

    /// <summary>The tag a record's value appears under.</summary>
    public static string Tag(MetricRecord r, string name) => $"{(r.Kind == "step" ? "train" : r.Kind)}/{name}";

    /// <summary>Writes the file anew: the version event, then every record.</summary>
    public void Rewrite(IEnumerable<MetricRecord> records)
    {
        using var file = new MemoryStream();
        WriteFrame(file, Event(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0, 0, FileVersion, []));
        foreach (var r in records) WriteFrame(file, Event(r));
        AtomicFile.Write(Path, file.ToArray());
    }

    public void Append(MetricRecord r)
    {
        using var frame = new MemoryStream();
        WriteFrame(frame, Event(r));
        AtomicFile.Append(Path, frame.ToArray());
    }

    private static byte[] Event(MetricRecord r) =>
        Event(r.Time ?? 0, r.Step, null, r.Values.Select(v => (Tag(r, v.Key), (float)v.Value)));

    /// <summary>One serialized Event: a file_version event when <paramref name="fileVersion"/> is given, else a
    /// summary with one simple_value per tag.</summary>
    internal static byte[] Event(double wallTime, long step, string? fileVersion, IEnumerable<(string Tag, float Value)> scalars) => Encode(o =>
    {
        o.WriteTag(1, WireFormat.WireType.Fixed64);
        o.WriteDouble(wallTime);
        o.WriteTag(2, WireFormat.WireType.Varint);
        o.WriteInt64(step);
        if (fileVersion is not null)
        {
            o.WriteTag(3, WireFormat.WireType.LengthDelimited);
            o.WriteString(fileVersion);
        }
        else WriteMessage(o, 5, Summary(scalars));
    });

    private static byte[] Summary(IEnumerable<(string Tag, float Value)> scalars) => Encode(o =>
    {
        foreach (var (tag, value) in scalars)
            WriteMessage(o, 1, Encode(v =>
            {
                v.WriteTag(1, WireFormat.WireType.LengthDelimited);
                v.WriteString(tag);
                v.WriteTag(2, WireFormat.WireType.Fixed32);
                v.WriteFloat(value);
            }));
    });

    /// <summary>The bytes <paramref name="write"/> puts on a fresh CodedOutputStream.</summary>
    private static byte[] Encode(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var o = new CodedOutputStream(buffer);
        write(o);
        o.Flush();
        return buffer.ToArray();
    }

    /// <summary>An embedded message (already serialized) as field <paramref name="field"/>.</summary>
    private static void WriteMessage(CodedOutputStream o, int field, byte[] message)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(message));
    }

    /// <summary>One TFRecord: length, its masked CRC, the data, its masked CRC.</summary>
    internal static void WriteFrame(Stream s, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        s.Write(header);
        s.Write(data);
        s.Write(footer);
    }

    /// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial and final XOR with all ones);
    /// "123456789" gives 0xE3069283.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>TFRecord's mask: a CRC of data that holds CRCs is not the CRC of the data any more.</summary>
    public static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
