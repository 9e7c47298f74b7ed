// The safetensors container: 8-byte little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets} plus an optional "__metadata__" map of strings, then the raw little-endian
// data. Reading validates everything before any byte is trusted (bounded header, known dtypes, offsets
// contiguous from 0 with no gap or overlap and covering the whole buffer, byte counts matching shape×dtype)
// and reports the first problem as one UserError naming the file. Writing is atomic: temp file, fsync, rename.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SimClr.Training.Cli;
using SimClr.Training.Io;

namespace SimClr.Training.Checkpoints;

public enum SafeDType { F32, F64, I32, I64, U8 }

public sealed record SafeTensorInfo(string Name, SafeDType DType, int[] Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, d) => checked(a * d));
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>A parsed, validated safetensors file held in memory.</summary>
public sealed class SafeTensorsFile
{
    /// <summary>Headers larger than this are refused before being read (the format's own reference uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private readonly byte[] _data;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;

    private SafeTensorsFile(string path, Dictionary<string, string> metadata, Dictionary<string, SafeTensorInfo> tensors, byte[] data)
    {
        Path = path;
        Metadata = metadata;
        _tensors = tensors;
        _data = data;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _tensors;

    public static int ElementSize(SafeDType t) => t switch
    {
        SafeDType.F32 or SafeDType.I32 => 4,
        SafeDType.F64 or SafeDType.I64 => 8,
        _ => 1,
    };

    public static SafeDType DTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? SafeDType.F32 :
        typeof(T) == typeof(double) ? SafeDType.F64 :
        typeof(T) == typeof(int) ? SafeDType.I32 :
        typeof(T) == typeof(long) ? SafeDType.I64 :
        typeof(T) == typeof(byte) ? SafeDType.U8 :
        throw new NotSupportedException($"no safetensors dtype for {typeof(T).Name}");

    public string RequireMetadata(string key) =>
        Metadata.TryGetValue(key, out var v) ? v : throw UserError.File(Path, $"metadata entry '{key}' is missing");

    /// <summary>The elements of tensor <paramref name="name"/>, checked for dtype and (when given) shape.</summary>
    public T[] Read<T>(string name, ReadOnlySpan<int> expectedShape = default) where T : unmanaged
    {
        if (!_tensors.TryGetValue(name, out var info)) throw UserError.File(Path, $"tensor '{name}' is missing");
        var want = DTypeOf<T>();
        if (info.DType != want) throw UserError.File(Path, $"tensor '{name}' has dtype {info.DType}, expected {want}");
        if (!expectedShape.IsEmpty && !expectedShape.SequenceEqual(info.Shape))
            throw UserError.File(Path, $"tensor '{name}' has shape {info.ShapeText}, the model expects [{string.Join(", ", expectedShape.ToArray())}]");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian hosts are not supported");
        var bytes = _data.AsSpan((int)info.Begin, (int)(info.End - info.Begin));
        var result = new T[info.Elements];
        bytes.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Reads <paramref name="path"/> under the program's read rule (a regular file after links, at most
    /// 2 GiB) and parses it.</summary>
    public static SafeTensorsFile Load(string path) => Parse(path, SafeFile.ReadAll(path, SafeFile.MaxBytes));

    public static SafeTensorsFile Parse(string path, byte[] file)
    {
        UserError Bad(string what) => UserError.File(path, $"not a valid safetensors file: {what}");
        if (file.Length < 8) throw Bad($"{file.Length} bytes is too short for the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (headerLength < 2) throw Bad($"header length {headerLength} is too small");
        if (headerLength > MaxHeaderBytes) throw Bad($"header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
        if (headerLength > (ulong)(file.Length - 8)) throw Bad($"header length {headerLength} runs past the end of the {file.Length}-byte file (truncated?)");
        int dataStart = 8 + (int)headerLength;
        var data = file.AsSpan(dataStart).ToArray();

        JsonDocument doc;
        try
        {
            string headerText = new UTF8Encoding(false, true).GetString(file, 8, (int)headerLength);
            doc = JsonDocument.Parse(headerText);
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw Bad($"header is not valid UTF-8 JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("header is not a JSON object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw Bad($"key '{prop.Name}' appears twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Bad($"metadata '{m.Name}' appears twice");
                    }
                    continue;
                }
                tensors.Add(prop.Name, ParseEntry(prop, Bad));
            }

            long cursor = 0;
            foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
            {
                if (t.Begin != cursor)
                    throw Bad(t.Begin < cursor
                        ? $"tensor '{t.Name}' overlaps the previous tensor (starts at {t.Begin}, previous ends at {cursor})"
                        : $"gap before tensor '{t.Name}' (starts at {t.Begin}, previous ends at {cursor})");
                cursor = t.End;
            }
            if (cursor != data.Length)
                throw Bad(cursor < data.Length
                    ? $"{data.Length - cursor} trailing bytes after the last tensor"
                    : $"tensors need {cursor} data bytes but the file holds {data.Length} (truncated?)");
            return new SafeTensorsFile(path, metadata, tensors, data);
        }
    }

    private static SafeTensorInfo ParseEntry(JsonProperty prop, Func<string, UserError> bad)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw bad($"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw bad($"tensor '{name}' has no dtype");
        SafeDType? parsed = dt.GetString() switch
        {
            "F32" => SafeDType.F32, "F64" => SafeDType.F64, "I32" => SafeDType.I32, "I64" => SafeDType.I64, "U8" => SafeDType.U8,
            _ => null,
        };
        if (parsed is not { } dtype)
            throw bad($"tensor '{name}' has unsupported dtype '{dt.GetString()}' (F32, F64, I32, I64, U8)");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw bad($"tensor '{name}' has no shape");
        var shape = new List<int>();
        long elements = 1;
        bool tooLarge = false;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int n) || n < 0) throw bad($"tensor '{name}' has an invalid dimension {Show(d)}");
            shape.Add(n);
            tooLarge |= n != 0 && elements > long.MaxValue / 8 / n;
            if (!tooLarge) elements *= n;
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw bad($"tensor '{name}' has no [begin, end] data_offsets");
        // Offsets must be JSON integers: a string, a fraction or a number past int64 is refused, not converted.
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw bad($"tensor '{name}' has invalid data_offsets [{Show(off[0])}, {Show(off[1])}] (expected two integers, begin ≤ end)");
        foreach (var p in v.EnumerateObject())
            if (p.Name is not ("dtype" or "shape" or "data_offsets")) throw bad($"tensor '{name}' has an unknown field '{p.Name}'");
        var info = new SafeTensorInfo(name, dtype, shape.ToArray(), begin, end);
        if (tooLarge) throw bad($"tensor '{name}' shape {info.ShapeText} is too large");
        long expected = elements * ElementSize(dtype);
        if (end - begin != expected)
            throw bad($"tensor '{name}' is {dtype} {info.ShapeText} = {expected} bytes but its data_offsets span {end - begin}");
        return info;
    }

    /// <summary>A JSON value as it appeared, shortened, for an error message.</summary>
    private static string Show(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length <= 40 ? raw : raw[..37] + "...";
    }
}

/// <summary>Builds a safetensors file in memory and writes it atomically.</summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, SafeDType DType, int[] Shape, byte[] Bytes)> _entries = [];
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public void AddMetadata(string key, string value) => _metadata[key] = value;

    public void Add<T>(string name, ReadOnlySpan<T> values, ReadOnlySpan<int> shape) where T : unmanaged
    {
        if (name == "__metadata__" || !_names.Add(name)) throw new ArgumentException($"duplicate or reserved tensor name '{name}'", nameof(name));
        long elements = 1;
        foreach (int d in shape) elements *= d;
        if (elements != values.Length) throw new ArgumentException($"tensor '{name}' has {values.Length} values but shape [{string.Join(", ", shape.ToArray())}]");
        _entries.Add((name, SafeTensorsFile.DTypeOf<T>(), shape.ToArray(), MemoryMarshal.AsBytes(values).ToArray()));
    }

    public byte[] ToBytes()
    {
        using var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (_metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in _entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToString());
                w.WriteStartArray("shape");
                foreach (int d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + e.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += e.Bytes.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data that follows is 8-byte aligned.
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        using var file = new MemoryStream();
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        file.Write(len);
        header.Position = 0;
        header.CopyTo(file);
        foreach (var e in _entries) file.Write(e.Bytes);
        return file.ToArray();
    }

    /// <summary>Writes to a temporary file beside <paramref name="path"/>, fsyncs it, then renames it over the target.</summary>
    public void WriteAtomic(string path) => AtomicFile.Write(path, ToBytes());
}
