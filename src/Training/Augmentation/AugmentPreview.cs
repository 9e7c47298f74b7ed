// augment-preview: a PNG showing what the augmentation does. A caption at the top states the data, seed and
// every setting of the augmentation used; below it, each grid column is a triplet headed "original",
// "view 1", "view 2": an original image (resized to the view size, nearest neighbour) beside its two views
// (view 0 and 1 of the same seed and epoch, de-normalized). The views come from the backend's AugmentViews,
// so the picture shows exactly what training sees on that backend. Cells are upscaled by an integer factor,
// --scale or by default enough for a 32×32 view to be about 96 px. Drawn with SkiaSharp (what ScottPlot
// draws with), text in the system's sans-serif font. The PNG replaces any earlier one atomically (Io/AtomicFile).
using System.Globalization;
using System.Numerics;
using SimClr.Kernels;
using SimClr.Training.Data;
using SimClr.Training.Io;
using SkiaSharp;

namespace SimClr.Training.Augmentation;

/// <summary>Where things are on the preview canvas (pixels).</summary>
public sealed record PreviewLayout(int Width, int Height, int CaptionHeight, int HeaderTop, int GridTop, int Scale, int CellWidth, int CellHeight, int Count)
{
    public const int Margin = 8, Gap = 2, ColumnGap = 16, RowsPerColumn = 8, HeaderHeight = 20, CaptionLineHeight = 18;

    public int TripletWidth => 3 * CellWidth + 2 * Gap;

    /// <summary>Top-left pixel of image <paramref name="index"/>'s cell <paramref name="part"/> (0 original, 1 and 2 the views).</summary>
    public (int X, int Y) Cell(int index, int part) =>
        (Margin + index / RowsPerColumn * (TripletWidth + ColumnGap) + part * (CellWidth + Gap), GridTop + index % RowsPerColumn * (CellHeight + Gap));
}

public static class AugmentPreview
{
    private const int MinCellSide = 96, MinCaptionWidth = 560;
    private static readonly string[] Headers = ["original", "view 1", "view 2"];

    /// <summary>Writes the preview for <paramref name="count"/> images spread evenly over the dataset; <paramref name="scale"/>
    /// 0 picks the upscaling factor, otherwise each view pixel becomes scale × scale.</summary>
    public static PreviewLayout Write<T>(string pngPath, ImageDataset dataset, AugmentSpec spec, ulong seed, int count, IBackend<T> backend, int epoch = 0, int scale = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegative(scale);
        spec.Validate();
        count = Math.Min(count, dataset.Count);
        var indices = new int[count];
        for (int i = 0; i < count; i++) indices[i] = (int)((long)i * dataset.Count / count);

        var views0 = Augment(backend, dataset, indices, spec, new AugmentKey(seed, epoch, 0));
        var views1 = Augment(backend, dataset, indices, spec, new AugmentKey(seed, epoch, 1));

        int h = spec.OutHeight, w = spec.OutWidth;
        if (scale == 0) scale = Math.Max(1, MinCellSide / Math.Max(h, w));
        var caption = Caption(dataset, spec, seed, epoch, count, scale);
        using var font = new SKFont(SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default, 13);
        using var headerFont = new SKFont(font.Typeface, 14) { Embolden = true };
        var layout = Layout(count, h * scale, w * scale, scale, caption, font);

        var pixels = new byte[layout.Width * layout.Height * 4];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = 255;
        int plane = h * w;
        var cell = new float[3 * plane];
        for (int i = 0; i < count; i++)
        {
            OriginalAsCell(cell, dataset, indices[i], h, w);
            Blit(pixels, layout, layout.Cell(i, 0), cell, h, w);
            Denormalize(cell, views0.AsSpan(i * 3 * plane, 3 * plane), spec, plane);
            Blit(pixels, layout, layout.Cell(i, 1), cell, h, w);
            Denormalize(cell, views1.AsSpan(i * 3 * plane, 3 * plane), spec, plane);
            Blit(pixels, layout, layout.Cell(i, 2), cell, h, w);
        }

        using var bitmap = new SKBitmap(new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using (var canvas = new SKCanvas(bitmap))
        using (var ink = new SKPaint { Color = new SKColor(30, 30, 30), IsAntialias = true })
        {
            var lines = Wrap(caption, font, layout.Width - 2 * PreviewLayout.Margin);
            for (int l = 0; l < lines.Count; l++)
                canvas.DrawText(lines[l], PreviewLayout.Margin, PreviewLayout.Margin + (l + 1) * PreviewLayout.CaptionLineHeight - 5, font, ink);
            int columns = (count + PreviewLayout.RowsPerColumn - 1) / PreviewLayout.RowsPerColumn;
            for (int c = 0; c < columns; c++)
                for (int part = 0; part < 3; part++)
                {
                    var (x, _) = layout.Cell(c * PreviewLayout.RowsPerColumn, part);
                    canvas.DrawText(Headers[part], x + layout.CellWidth / 2f, layout.HeaderTop + PreviewLayout.HeaderHeight - 6, SKTextAlign.Center, headerFont, ink);
                }
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(pngPath, png.AsSpan());
        return layout;
    }

    /// <summary>The settings the picture was drawn with, as wrapped caption text.</summary>
    public static string Caption(ImageDataset dataset, in AugmentSpec s, ulong seed, int epoch, int count, int scale) => string.Create(CultureInfo.InvariantCulture,
        $"{dataset.Name}: {count} images, seed {seed}, epoch {epoch}; views {s.OutHeight}×{s.OutWidth} px shown ×{scale}. "
        + $"Crop {s.CropAreaMin:0.###}–{s.CropAreaMax:0.###} of the area, aspect {s.AspectMin:0.###}–{s.AspectMax:0.###}; flip p {s.FlipProbability:0.###}; "
        + $"colour jitter p {s.JitterProbability:0.###} (brightness {s.Brightness:0.###}, contrast {s.Contrast:0.###}, saturation {s.Saturation:0.###}, hue {s.Hue:0.###}); "
        + $"grayscale p {s.GrayscaleProbability:0.###}; blur p {s.BlurProbability:0.###}, σ {s.BlurSigmaMin:0.###}–{s.BlurSigmaMax:0.###}.");

    private static PreviewLayout Layout(int count, int cellH, int cellW, int scale, string caption, SKFont font)
    {
        int columns = (count + PreviewLayout.RowsPerColumn - 1) / PreviewLayout.RowsPerColumn, rows = Math.Min(count, PreviewLayout.RowsPerColumn);
        int tripletW = 3 * cellW + 2 * PreviewLayout.Gap;
        int gridW = columns * tripletW + (columns - 1) * PreviewLayout.ColumnGap;
        int width = Math.Max(gridW, MinCaptionWidth) + 2 * PreviewLayout.Margin;
        int captionH = Wrap(caption, font, width - 2 * PreviewLayout.Margin).Count * PreviewLayout.CaptionLineHeight;
        int headerTop = PreviewLayout.Margin + captionH + PreviewLayout.Margin / 2;
        int gridTop = headerTop + PreviewLayout.HeaderHeight;
        int height = gridTop + rows * cellH + (rows - 1) * PreviewLayout.Gap + PreviewLayout.Margin;
        return new PreviewLayout(width, height, captionH, headerTop, gridTop, scale, cellW, cellH, count);
    }

    /// <summary>Greedy word wrap to <paramref name="width"/> pixels.</summary>
    private static List<string> Wrap(string text, SKFont font, float width)
    {
        var lines = new List<string>();
        string line = "";
        foreach (var word in text.Split(' '))
        {
            string candidate = line.Length == 0 ? word : line + " " + word;
            if (line.Length > 0 && font.MeasureText(candidate) > width)
            {
                lines.Add(line);
                line = word;
            }
            else line = candidate;
        }
        if (line.Length > 0) lines.Add(line);
        return lines;
    }

    private static float[] Augment<T>(IBackend<T> backend, ImageDataset dataset, int[] indices, in AugmentSpec spec, in AugmentKey key)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var subset = dataset.Subset(indices);
        using var resident = ResidentImages.Upload(backend, subset);
        using var idx = backend.Allocate<int>(indices.Length);
        var positions = new int[indices.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = i;
        backend.Upload(idx.AsTensor(), positions);
        long length = (long)indices.Length * 3 * spec.OutHeight * spec.OutWidth;
        using var views = backend.Allocate<T>(length);
        backend.AugmentViews(views.AsTensor(), resident.Images, idx.AsTensor(), subset.Shape, spec, key);
        backend.Synchronize();
        var host = new T[length];
        backend.Download(host, views.AsTensor());
        return host.Select(float.CreateTruncating).ToArray();
    }

    /// <summary>The original image, nearest-neighbour resized to h x w, as planar RGB in [0, 1].</summary>
    private static void OriginalAsCell(float[] cell, ImageDataset dataset, int index, int h, int w)
    {
        var img = dataset.Image(index);
        int sh = dataset.Shape.Height, sw = dataset.Shape.Width, c = dataset.Shape.Channels, plane = h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int sy = y * sh / h, sx = x * sw / w;
                for (int ch = 0; ch < 3; ch++)
                    cell[ch * plane + y * w + x] = img[(sy * sw + sx) * c + (c == 1 ? 0 : ch)] / 255f;
            }
    }

    private static void Denormalize(float[] cell, ReadOnlySpan<float> view, in AugmentSpec spec, int plane)
    {
        ReadOnlySpan<float> mean = [spec.MeanR, spec.MeanG, spec.MeanB], std = [spec.StdR, spec.StdG, spec.StdB];
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < plane; p++)
                cell[ch * plane + p] = view[ch * plane + p] * std[ch] + mean[ch];
    }

    /// <summary>Copies a planar RGB cell, each pixel scale × scale, into the RGBA canvas at <paramref name="at"/>.</summary>
    private static void Blit(byte[] canvas, PreviewLayout layout, (int X, int Y) at, float[] cell, int h, int w)
    {
        int plane = h * w, scale = layout.Scale;
        for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
            {
                int p = y / scale * w + x / scale, o = ((at.Y + y) * layout.Width + at.X + x) * 4;
                for (int ch = 0; ch < 3; ch++)
                    canvas[o + ch] = (byte)Math.Clamp((int)MathF.Round(cell[ch * plane + p] * 255f), 0, 255);
            }
    }
}
