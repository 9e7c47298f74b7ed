// An image folder of PNG, JPEG or BMP files, decoded with StbImageSharp in parallel and resized once to
// size x size RGB. Three layouts:
//   root/train/<class>/…, root/test/<class>/…   the splits as given; classes are train's sub-folders, and a test
//                                              class that train lacks is an error;
//   root/<class>/…                              one class per sub-folder, split by a seeded shuffle;
//   root/… with images at its top level         unlabeled: every image below root, for pretraining only.
// FolderLabels.Auto picks the layout from what root holds; Subfolders and None force the second or the third.
// Below a class folder (or an unlabeled root) images are collected recursively, following links, and a folder
// that links back to one of its ancestors is an error (it would be read forever). A class folder holding no
// image is skipped with a note, and files that are not images are counted in one note, so nothing is dropped
// silently.
// Decoding is strict: a file must be a regular file of bounded size whose container is whole (PNG: every chunk's
// CRC, IHDR first, IDAT, IEND; JPEG: SOI, well-formed segments up to the scan, EOI after it; BMP: the declared
// size is present) and whose declared dimensions are bounded, before the decoder sees it. Errors name the file,
// with control characters escaped so a decoder's message cannot break the line.
// Memory: the decoded set is held whole (ImageMemory); a folder whose decoded size passes the limit is read as a
// seeded subset that fits, with a note saying how many of how many. Files are read one at a time per thread.
// Resizing first centre-crops to a square (aspect kept), then resamples separably: area averaging when
// shrinking, bilinear with half-pixel centres when enlarging.
using System.Buffers.Binary;
using System.Text;
using SimClr.Kernels;
using StbImageSharp;

namespace SimClr.Training.Data;

/// <summary>Whether an image folder's sub-folders are classes.</summary>
public enum FolderLabels
{
    /// <summary>train/ + test/ when both exist; else classes when root holds only sub-folders; else unlabeled.</summary>
    Auto,
    /// <summary>Always one class per sub-folder (or train/ + test/).</summary>
    Subfolders,
    /// <summary>No labels: every image below root, for pretraining.</summary>
    None,
}

public static class ImageFolderReader
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp" };

    /// <summary>Files larger than this are refused before they are read.</summary>
    public const long MaxFileBytes = 256L << 20;
    /// <summary>Declared image sizes beyond these are refused before decoding (the decoder allocates W·H·3).</summary>
    public const int MaxSide = 32768;
    public const long MaxPixels = 64L << 20;
    /// <summary>Folder nesting deeper than this is refused (links that loop are caught before it).</summary>
    private const int MaxDepth = 64;

    public static DatasetSplits Load(string root, int size, double testFraction = 0.1, ulong seed = 0,
        FolderLabels labels = FolderLabels.Auto, long maxImageBytes = long.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (testFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(testFraction), $"test fraction {testFraction} must lie in [0, 1)");
        DataFiles.RequireDirectory(root, "image");
        var scan = new Scan(root);
        string train = Path.Combine(root, "train"), test = Path.Combine(root, "test");
        long imageBytes = 3L * size * size;

        if (labels != FolderLabels.None && Directory.Exists(train) && Directory.Exists(test))
        {
            var trainClasses = scan.Classes(train);
            var testClasses = scan.Classes(test);
            foreach (var c in testClasses.Where(c => c.Files.Count > 0 && !trainClasses.Any(t => t.Name == c.Name)))
                throw new DatasetException(Text($"{c.Folder}: class '{c.Name}' has test images but no folder in {train} (its classes: {string.Join(", ", trainClasses.Select(t => t.Name))})"));
            var names = trainClasses.Select(c => c.Name).ToArray();
            var trainFiles = Labeled(trainClasses, names);
            var testFiles = Labeled(testClasses, names);
            foreach (var c in trainClasses.Where(c => !testClasses.Any(t => t.Name == c.Name && t.Files.Count > 0)))
                scan.Notes.Add(Text($"note: {test}: no test images of class '{c.Name}'"));
            (trainFiles, testFiles) = Fit(scan, root, trainFiles, testFiles, imageBytes, maxImageBytes, seed);
            return new DatasetSplits(Read("folder-train", trainFiles, names, size), Read("folder-test", testFiles, names, size)) { Notes = scan.Finish() };
        }

        bool imagesAtTop = scan.ImagesAt(root);
        if (labels == FolderLabels.Subfolders || (labels == FolderLabels.Auto && !imagesAtTop && Directory.EnumerateDirectories(root).Any()))
        {
            var classes = scan.Classes(root);
            var names = classes.Select(c => c.Name).ToArray();
            var all = Labeled(classes, names);
            var order = new PhiloxStream(seed).Permutation(all.Count);
            int testCount = (int)Math.Round(all.Count * testFraction);
            var trainFiles = order.Skip(testCount).Select(i => all[i]).ToList();
            var testFiles = order.Take(testCount).Select(i => all[i]).ToList();
            (trainFiles, testFiles) = Fit(scan, root, trainFiles, testFiles, imageBytes, maxImageBytes, seed);
            return new DatasetSplits(Read("folder-train", trainFiles, names, size), Read("folder-test", testFiles, names, size)) { Notes = scan.Finish() };
        }

        var files = scan.Images(root, []).Select(f => (f, ImageDataset.Unlabeled)).ToList();
        if (files.Count == 0) throw new DatasetException(Text($"{root}: no images ({string.Join(", ", Extensions)}) below it"));
        (files, _) = Fit(scan, root, files, [], imageBytes, maxImageBytes, seed);
        var set = Read("folder-unlabeled", files, [], size);
        return new DatasetSplits(set, set.Take(0)) { Notes = scan.Finish() };
    }

    private sealed record ClassFolder(string Name, string Folder, List<string> Files);

    /// <summary>Walks the folders, collecting images and notes, with every directory's real path on the current
    /// branch remembered so a link back to an ancestor is caught.</summary>
    private sealed class Scan(string root)
    {
        private int _skipped;
        private string? _firstSkipped;
        public List<string> Notes { get; } = [];

        public bool ImagesAt(string dir) => Entries(() => Directory.EnumerateFiles(dir), dir).Any(f => Extensions.Contains(Path.GetExtension(f)));

        public List<ClassFolder> Classes(string dir)
        {
            string[] ancestors = [.. new[] { RealPath(root), RealPath(dir) }.Distinct()];
            var found = new List<ClassFolder>();
            foreach (var sub in Entries(() => Directory.EnumerateDirectories(dir), dir).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(sub);
                var files = Images(sub, ancestors);
                if (files.Count == 0) Notes.Add(Text($"note: {sub}: class folder holds no images; class '{name}' skipped"));
                found.Add(new ClassFolder(name, sub, files));
            }
            if (found.Count == 0) throw new DatasetException(Text($"{dir}: no class sub-folders (expected one folder of images per class)"));
            if (found.All(c => c.Files.Count == 0)) throw new DatasetException(Text($"{dir}: no images ({string.Join(", ", Extensions)}) in its class folders"));
            found.RemoveAll(c => c.Files.Count == 0);
            return found;
        }

        /// <summary>Every image file below <paramref name="dir"/>, in ordinal path order, following links.</summary>
        public List<string> Images(string dir, IReadOnlyList<string> ancestors)
        {
            var result = new List<string>();
            Walk(dir, ancestors.ToList(), result);
            return result;
        }

        private void Walk(string dir, List<string> ancestors, List<string> result)
        {
            string real = RealPath(dir);
            if (ancestors.Contains(real))
                throw new DatasetException(Text($"{dir}: links back to {real}, a folder that contains it (the folder tree loops)"));
            if (ancestors.Count >= MaxDepth) throw new DatasetException(Text($"{dir}: folders nested deeper than {MaxDepth} levels"));
            foreach (var f in Entries(() => Directory.EnumerateFiles(dir), dir).Order(StringComparer.Ordinal))
            {
                if (Extensions.Contains(Path.GetExtension(f))) result.Add(f);
                else if (_skipped++ == 0) _firstSkipped = f;
            }
            ancestors.Add(real);
            foreach (var sub in Entries(() => Directory.EnumerateDirectories(dir), dir).Order(StringComparer.Ordinal))
                Walk(sub, ancestors, result);
            ancestors.RemoveAt(ancestors.Count - 1);
        }

        public List<string> Finish()
        {
            if (_skipped > 0)
                Notes.Add(Text($"note: {root}: skipped {_skipped} file{(_skipped == 1 ? "" : "s")} that {(_skipped == 1 ? "is" : "are")} not {string.Join("/", Extensions)} (first: {_firstSkipped})"));
            return Notes;
        }

        private static List<string> Entries(Func<IEnumerable<string>> list, string dir)
        {
            try { return list().ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DatasetException(Text($"{dir}: cannot list the folder ({e.Message})"), e);
            }
        }
    }

    /// <summary>The path with every link along it resolved (a directory's identity for loop detection).</summary>
    internal static string RealPath(string path)
    {
        try { return Io.SafeFile.RealPath(path); }
        catch (Cli.UserError e) { throw new DatasetException(e.Message, e); }
    }

    private static List<(string Path, int Label)> Labeled(List<ClassFolder> classes, string[] names) =>
        classes.Where(c => c.Files.Count > 0).SelectMany(c => c.Files.Select(f => (f, Array.IndexOf(names, c.Name)))).ToList();

    /// <summary>Both splits unchanged when their decoded size fits under the limit (the smaller of the image memory
    /// budget and one array); otherwise the same seeded share of each, and a note.</summary>
    private static (List<(string, int)>, List<(string, int)>) Fit(Scan scan, string root, List<(string, int)> train, List<(string, int)> test,
        long imageBytes, long maxImageBytes, ulong seed)
    {
        long limit = Math.Min(maxImageBytes, Array.MaxLength), total = (train.Count + test.Count) * imageBytes;
        if (total <= limit) return (train, test);
        double share = (double)limit / total;
        int keepTrain = Math.Max(1, (int)(train.Count * share)), keepTest = test.Count == 0 ? 0 : Math.Max(1, (int)(test.Count * share));
        scan.Notes.Add(Text($"note: {root}: {train.Count + test.Count} images need {ImageMemory.Describe(total)} decoded, past the image memory limit "
            + $"({ImageMemory.Describe(limit)}); reading a seeded subset of {keepTrain + keepTest}"));
        return (Sample(train, keepTrain, seed, 0), Sample(test, keepTest, seed, 1));
    }

    private static List<(string, int)> Sample(List<(string, int)> files, int keep, ulong seed, uint stream)
    {
        var order = new PhiloxStream(seed, 0x5B5E7 + stream).Permutation(files.Count);
        return order.Take(keep).Order().Select(i => files[i]).ToList();
    }

    private static ImageDataset Read(string name, List<(string Path, int Label)> files, string[] classes, int size)
    {
        int imageBytes = size * size * 3;
        var images = new byte[(long)files.Count * imageBytes];
        var labels = files.Select(f => f.Label).ToArray();
        var failures = new DatasetException?[files.Count];
        Parallel.For(0, files.Count, i =>
        {
            try
            {
                var (pixels, height, width) = Decode(files[i].Path);
                ResizeSquare(images.AsSpan(i * imageBytes, imageBytes), size, pixels, height, width);
            }
            catch (DatasetException e)
            {
                failures[i] = e;
            }
        });
        if (failures.FirstOrDefault(f => f is not null) is { } failure) throw failure;
        return new ImageDataset(name, new ImageSetShape(files.Count, size, size, 3), images, labels, classes) { Files = files.Select(f => f.Path).ToArray() };
    }

    /// <summary>The RGB pixels of one image file, after the checks in the file header above.</summary>
    internal static (byte[] Pixels, int Height, int Width) Decode(string path)
    {
        // The one read rule (Io/SafeFile: links resolved first, a FIFO or device refused without blocking).
        var bytes = DataFiles.ReadAll(path, MaxFileBytes);
        var (width, height) = CheckContainer(path, bytes);
        if (width <= 0 || height <= 0 || width > MaxSide || height > MaxSide || (long)width * height > MaxPixels)
            throw new DatasetException(Text($"{path}: declared size {width}x{height} is outside 1..{MaxSide} per side and {MaxPixels} pixels"));
        ImageResult decoded;
        try
        {
            decoded = ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new DatasetException(Text($"{path}: cannot decode image ({e.Message})"), e);
        }
        if (decoded.Width != width || decoded.Height != height || decoded.Data.Length != (long)width * height * 3)
            throw new DatasetException(Text($"{path}: the decoder returned {decoded.Width}x{decoded.Height} for a file declaring {width}x{height}"));
        return (decoded.Data, height, width);
    }

    /// <summary>Checks the container of a PNG, JPEG or BMP file and returns its declared width and height.</summary>
    internal static (int Width, int Height) CheckContainer(string path, ReadOnlySpan<byte> b)
    {
        if (b.Length >= 8 && b[..8].SequenceEqual(PngSignature)) return CheckPng(path, b);
        if (b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return CheckJpeg(path, b);
        if (b.Length >= 2 && b[0] == (byte)'B' && b[1] == (byte)'M') return CheckBmp(path, b);
        throw new DatasetException(Text($"{path}: not a PNG, JPEG or BMP file (its first bytes are {Convert.ToHexString(b[..Math.Min(8, b.Length)])})"));
    }

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static (int, int) CheckPng(string path, ReadOnlySpan<byte> b)
    {
        int pos = 8, width = 0, height = 0;
        bool header = false, data = false;
        while (true)
        {
            if (pos + 12 > b.Length) throw Damaged(path, "PNG", $"ends inside a chunk header at byte {pos} (truncated; no IEND)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(b[pos..]);
            if (length > b.Length - pos - 12) throw Damaged(path, "PNG", $"chunk at byte {pos} declares {length} bytes, past the end of the file (truncated)");
            var type = b.Slice(pos + 4, 4);
            var body = b.Slice(pos + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(b[(pos + 8 + (int)length)..]);
            if (Crc32(b.Slice(pos + 4, 4 + (int)length)) != crc)
                throw Damaged(path, "PNG", $"chunk '{Ascii(type)}' at byte {pos} fails its CRC (the data is damaged)");
            string name = Ascii(type);
            if (!header && name != "IHDR") throw Damaged(path, "PNG", $"the first chunk is '{name}', not IHDR");
            if (name == "IHDR")
            {
                if (length < 8) throw Damaged(path, "PNG", "IHDR is too short");
                width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body), int.MaxValue);
                height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body[4..]), int.MaxValue);
                header = true;
            }
            else if (name == "IDAT") data = true;
            else if (name == "IEND")
            {
                if (!data) throw Damaged(path, "PNG", "has no image data (IDAT)");
                return (width, height);
            }
            pos += 12 + (int)length;
        }
    }

    private static (int, int) CheckJpeg(string path, ReadOnlySpan<byte> b)
    {
        int pos = 2, width = 0, height = 0;
        while (true)
        {
            if (pos + 4 > b.Length) throw Damaged(path, "JPEG", $"ends at byte {pos} before the image data (truncated)");
            if (b[pos] != 0xFF) throw Damaged(path, "JPEG", $"expected a marker at byte {pos}, found 0x{b[pos]:X2}");
            byte marker = b[pos + 1];
            if (marker == 0xFF) { pos++; continue; }
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; }
            if (marker == 0xD9) throw Damaged(path, "JPEG", $"ends (EOI at byte {pos}) before any image data");
            int length = BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 2)..]);
            if (length < 2 || pos + 2 + length > b.Length) throw Damaged(path, "JPEG", $"segment 0x{marker:X2} at byte {pos} runs past the end of the file (truncated)");
            bool frame = marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC;
            if (frame)
            {
                if (length < 7) throw Damaged(path, "JPEG", "its frame header is too short");
                height = BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 5)..]);
                width = BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 7)..]);
            }
            if (marker == 0xDA)
            {
                if (width == 0 || height == 0) throw Damaged(path, "JPEG", "reaches its image data without a frame header of non-zero size");
                // Inside the entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so the first
                // other 0xFF pair after the scan is a marker: the file is whole only if an EOI follows somewhere.
                var scan = b[(pos + 2 + length)..];
                for (int i = 0; i + 1 < scan.Length; i++)
                    if (scan[i] == 0xFF && scan[i + 1] == 0xD9) return (width, height);
                throw Damaged(path, "JPEG", "has no end-of-image marker after its image data (truncated or overwritten)");
            }
            pos += 2 + length;
        }
    }

    private static (int, int) CheckBmp(string path, ReadOnlySpan<byte> b)
    {
        if (b.Length < 26) throw Damaged(path, "BMP", "is shorter than its headers (truncated)");
        uint declared = BinaryPrimitives.ReadUInt32LittleEndian(b[2..]);
        if (declared > b.Length) throw Damaged(path, "BMP", $"declares {declared} bytes but holds {b.Length} (truncated)");
        uint dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(b[10..]);
        if (dataOffset >= b.Length) throw Damaged(path, "BMP", $"its pixel data would start at byte {dataOffset}, past the end (truncated)");
        uint info = BinaryPrimitives.ReadUInt32LittleEndian(b[14..]);
        if (info == 12) return (BinaryPrimitives.ReadUInt16LittleEndian(b[18..]), BinaryPrimitives.ReadUInt16LittleEndian(b[20..]));
        return (BinaryPrimitives.ReadInt32LittleEndian(b[18..]), Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(b[22..])));
    }

    private static DatasetException Damaged(string path, string format, string what) => new(Text($"{path}: damaged {format}: {what}"));

    private static string Ascii(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder(b.Length);
        foreach (var c in b) sb.Append(c is >= 0x20 and < 0x7F ? (char)c : '?');
        return sb.ToString();
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The CRC-32 of PNG (ISO 3309, reflected polynomial 0xEDB88320).</summary>
    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var x in data) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>One line a terminal shows as written: control characters (NUL, newlines, escapes) become \xNN.</summary>
    internal static string Text(string s)
    {
        if (!s.Any(char.IsControl)) return s;
        var sb = new StringBuilder(s.Length + 8);
        foreach (var c in s) sb.Append(char.IsControl(c) ? $"\\x{(int)c:X2}" : c);
        return sb.ToString();
    }

    /// <summary>Centre-crops an HWC image of <paramref name="channels"/> channels to a square and resamples it to size x size.</summary>
    public static void ResizeSquare(Span<byte> dst, int size, ReadOnlySpan<byte> src, int height, int width, int channels = 3)
    {
        int side = Math.Min(height, width), top = (height - side) / 2, left = (width - side) / 2;
        var taps = Taps(side, size);
        var rows = new float[side * size * channels];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < size; x++)
                foreach (var (index, weight) in taps[x])
                {
                    int s = ((top + y) * width + left + index) * channels, d = (y * size + x) * channels;
                    for (int c = 0; c < channels; c++) rows[d + c] += weight * src[s + c];
                }
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < channels; c++)
                {
                    float acc = 0;
                    foreach (var (index, weight) in taps[y]) acc += weight * rows[(index * size + x) * channels + c];
                    dst[(y * size + x) * channels + c] = (byte)Math.Clamp((int)MathF.Round(acc), 0, 255);
                }
    }

    /// <summary>For each output index, the source indices and weights (summing to 1) of a 1-d resample.</summary>
    internal static (int Index, float Weight)[][] Taps(int source, int output)
    {
        var taps = new (int, float)[output][];
        double scale = (double)source / output;
        for (int o = 0; o < output; o++)
        {
            var list = new List<(int, float)>();
            if (scale > 1)
            {
                double lo = o * scale, hi = (o + 1) * scale;
                for (int i = (int)lo; i < Math.Min(source, (int)Math.Ceiling(hi)); i++)
                {
                    double cover = Math.Min(hi, i + 1) - Math.Max(lo, i);
                    if (cover > 0) list.Add((i, (float)(cover / scale)));
                }
            }
            else
            {
                double s = Math.Max(0, (o + 0.5) * scale - 0.5);
                int i0 = Math.Min((int)s, source - 1), i1 = Math.Min(i0 + 1, source - 1);
                float f = (float)(s - i0);
                list.Add((i0, 1 - f));
                if (f > 0) list.Add((i1, f));
            }
            taps[o] = list.ToArray();
        }
        return taps;
    }
}
