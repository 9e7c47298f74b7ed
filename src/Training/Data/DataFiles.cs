// File access shared by the dataset readers, on top of the program's read rule (Io/SafeFile: regular files
// only, links resolved before sizes are checked, sizes bounded before allocation, I/O and permission errors as
// one line). Every failure here is a DatasetException naming the file and what is wrong. Compressed files are
// bounded too: a reader states how many bytes it expects after inflation (from the format's header) and
// OpenMaybeGzip refuses a claim no gzip stream of that size could honour, so an inflated size is known and
// bounded before anything is allocated, and extra inflated data is refused rather than read.
using System.IO.Compression;
using System.Text;
using SimClr.Training.Cli;
using SimClr.Training.Io;

namespace SimClr.Training.Data;

internal static class DataFiles
{
    /// <summary>Deflate cannot compress better than about 1032:1 (RFC 1951's longest match per code), so a gzip
    /// file of n bytes inflates to at most this many times n.</summary>
    public const long MaxInflationRatio = 1032;

    /// <summary>Class-name lists are short text files; anything larger is not one.</summary>
    public const long MaxNamesBytes = 1 << 20;

    public static string RequireDirectory(string path, string what)
    {
        if (!Directory.Exists(path)) throw new DatasetException($"{path}: {what} folder not found");
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

    /// <summary>Opens <paramref name="path"/> under the read rule (at most <paramref name="maxBytes"/> bytes).</summary>
    public static FileStream Open(string path, long maxBytes)
    {
        try { return SafeFile.OpenRead(path, maxBytes); }
        catch (UserError e) { throw new DatasetException(e.Message, e); }
    }

    /// <summary>The whole of <paramref name="path"/> under the read rule (at most <paramref name="maxBytes"/> bytes).</summary>
    public static byte[] ReadAll(string path, long maxBytes)
    {
        try { return SafeFile.ReadAll(path, maxBytes); }
        catch (UserError e) { throw new DatasetException(e.Message, e); }
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="stream"/>; an early end is a truncated file.</summary>
    public static void Read(string path, Stream stream, Span<byte> buffer, string layout)
    {
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw new DatasetException($"{path}: ends early ({layout}); the file is truncated"); }
        catch (InvalidDataException e) { throw new DatasetException($"{path}: corrupt gzip stream ({e.Message})", e); }
        catch (IOException e) { throw new DatasetException($"{path}: cannot be read ({e.Message})", e); }
        catch (UnauthorizedAccessException e) { throw new DatasetException($"{path}: cannot be read ({e.Message})", e); }
    }

    /// <summary>The whole file, which must be exactly <paramref name="expectedBytes"/> long (the size of what a
    /// link names, not of the link).</summary>
    public static byte[] ReadExact(string path, long expectedBytes, string layout)
    {
        using var stream = Open(path, SafeFile.MaxBytes);
        long length = stream.Length;
        if (length != expectedBytes)
            throw new DatasetException($"{path}: {length} bytes, expected exactly {expectedBytes} ({layout}){(length < expectedBytes ? "; the file is truncated" : "")}");
        var bytes = new byte[length];
        Read(path, stream, bytes, layout);
        return bytes;
    }

    /// <summary>A file that may be gzipped: the stream yields its inflated bytes, and <paramref name="storedBytes"/>
    /// is its size on disk (for <see cref="RequirePlausible"/>).</summary>
    public static Stream OpenMaybeGzip(string path, out long storedBytes, out bool compressed)
    {
        var file = Open(path, SafeFile.MaxBytes);
        storedBytes = file.Length;
        Span<byte> magic = stackalloc byte[2];
        int got;
        try
        {
            got = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            file.Position = 0;
        }
        catch (IOException e)
        {
            file.Dispose();
            throw new DatasetException($"{path}: cannot be read ({e.Message})", e);
        }
        compressed = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        return compressed ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    /// <summary>Refuses a header that claims more data than the file can hold: exactly the remaining bytes for
    /// a raw file, at most <see cref="MaxInflationRatio"/>× its size for a gzipped one, and never more than one
    /// array.</summary>
    public static void RequirePlausible(string path, long claimedBytes, long storedBytes, bool compressed, int headerBytes)
    {
        if (claimedBytes > Array.MaxLength)
            throw new DatasetException($"{path}: its header claims {claimedBytes} data bytes, more than one array holds ({Array.MaxLength})");
        if (compressed && claimedBytes + headerBytes > storedBytes * MaxInflationRatio)
            throw new DatasetException($"{path}: its header claims {claimedBytes} data bytes, more than a {storedBytes}-byte gzip file can inflate to; the file is truncated or corrupt");
    }

    /// <summary>Demands that <paramref name="stream"/> has nothing left after the data its header described.</summary>
    public static void RequireEnd(string path, Stream stream, long expectedBytes)
    {
        Span<byte> one = stackalloc byte[1];
        int extra;
        try { extra = stream.Read(one); }
        catch (InvalidDataException e) { throw new DatasetException($"{path}: corrupt gzip stream ({e.Message})", e); }
        catch (IOException e) { throw new DatasetException($"{path}: cannot be read ({e.Message})", e); }
        if (extra > 0) throw new DatasetException($"{path}: holds more than the {expectedBytes} data bytes its header describes");
    }

    /// <summary>Non-empty lines of an optional text file of class names, or null when absent or of the wrong count.</summary>
    public static string[]? ReadNames(string path, int expected)
    {
        if (!Path.Exists(path)) return null;
        var names = Encoding.UTF8.GetString(ReadAll(path, MaxNamesBytes)).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == expected ? names : null;
    }
}
