// File checks shared by the readers: every failure becomes a DatasetException that names the file and
// what is wrong, so the CLI can print it as one line.
using System.IO.Compression;

namespace SimClr.Training.Data;

internal static class DataFiles
{
    public static string RequireDirectory(string path, string what)
    {
        if (!Directory.Exists(path)) throw new DatasetException($"{path}: {what} folder not found");
        return path;
    }

    public static string RequireFile(string path)
    {
        if (!File.Exists(path)) throw new DatasetException($"{path}: file not found");
        return path;
    }

    /// <summary>The first of <paramref name="candidates"/> (relative to <paramref name="root"/>) that is a folder holding <paramref name="marker"/>.</summary>
    public static string ResolveFolder(string root, string marker, params string[] candidates)
    {
        RequireDirectory(root, "dataset");
        foreach (var c in candidates)
        {
            var dir = c.Length == 0 ? root : Path.Combine(root, c);
            if (File.Exists(Path.Combine(dir, marker)) || File.Exists(Path.Combine(dir, marker + ".gz"))) return dir;
        }
        throw new DatasetException($"{Path.Combine(root, candidates.Length > 0 ? candidates[^1] : "", marker)}: file not found (looked in {root} and its sub-folders {string.Join(", ", candidates.Where(c => c.Length > 0))})");
    }

    /// <summary>The whole file, which must be exactly <paramref name="expectedBytes"/> long.</summary>
    public static byte[] ReadExact(string path, long expectedBytes, string layout)
    {
        RequireFile(path);
        long length = new FileInfo(path).Length;
        if (length != expectedBytes)
            throw new DatasetException($"{path}: {length} bytes, expected exactly {expectedBytes} ({layout}){(length < expectedBytes ? "; the file is truncated" : "")}");
        return ReadAll(path);
    }

    public static byte[] ReadAll(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (IOException e) { throw new DatasetException($"{path}: cannot read ({e.Message})", e); }
        catch (UnauthorizedAccessException e) { throw new DatasetException($"{path}: cannot read ({e.Message})", e); }
    }

    /// <summary>The file's bytes, gunzipped when it starts with the gzip magic.</summary>
    public static byte[] ReadMaybeGzip(string path)
    {
        var raw = ReadAll(path);
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        try
        {
            using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e) { throw new DatasetException($"{path}: corrupt gzip stream ({e.Message})", e); }
    }

    /// <summary>Non-empty lines of an optional text file of class names, or null when absent or of the wrong count.</summary>
    public static string[]? ReadNames(string path, int expected)
    {
        if (!File.Exists(path)) return null;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == expected ? names : null;
    }
}
