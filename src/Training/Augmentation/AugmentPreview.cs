// augment-preview: a PNG grid showing what the augmentation does. Each cell is a triplet: an original
// image (resized to the view size, nearest neighbour) beside its two views (View 0 and 1 of the same
// seed and epoch, de-normalized). The views come from the backend's AugmentViews, so the picture shows
// exactly what training sees on that backend. Small views are upscaled by an integer factor so a 32x32
// crop stays visible. The PNG replaces any earlier one atomically (Io/AtomicFile).
using System.Numerics;
using SimClr.Kernels;
using SimClr.Training.Data;
using SimClr.Training.Io;
using StbImageWriteSharp;

namespace SimClr.Training.Augmentation;

public static class AugmentPreview
{
    private const int Gap = 2, RowsPerColumn = 8, MinCellSide = 96;

    /// <summary>Writes the grid for <paramref name="count"/> images spread evenly over the dataset.</summary>
    public static void Write<T>(string pngPath, ImageDataset dataset, AugmentSpec spec, ulong seed, int count, IBackend<T> backend, int epoch = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        spec.Validate();
        count = Math.Min(count, dataset.Count);
        var indices = new int[count];
        for (int i = 0; i < count; i++) indices[i] = (int)((long)i * dataset.Count / count);

        var views0 = Augment(backend, dataset, indices, spec, new AugmentKey(seed, epoch, 0));
        var views1 = Augment(backend, dataset, indices, spec, new AugmentKey(seed, epoch, 1));

        int h = spec.OutHeight, w = spec.OutWidth;
        int scale = Math.Max(1, MinCellSide / Math.Max(h, w));
        int cellH = h * scale, cellW = w * scale;
        int columns = (count + RowsPerColumn - 1) / RowsPerColumn, rows = Math.Min(count, RowsPerColumn);
        int tripletW = 3 * cellW + 2 * Gap;
        int width = columns * tripletW + (columns + 1) * 4 * Gap, height = rows * cellH + (rows + 1) * Gap;
        var canvas = new byte[width * height * 3];
        canvas.AsSpan().Fill(255);

        int plane = h * w;
        var cell = new float[3 * plane];
        for (int i = 0; i < count; i++)
        {
            int x0 = 4 * Gap + i / RowsPerColumn * (tripletW + 4 * Gap), y0 = Gap + i % RowsPerColumn * (cellH + Gap);
            OriginalAsCell(cell, dataset, indices[i], h, w);
            Blit(canvas, width, x0, y0, cell, h, w, scale);
            Denormalize(cell, views0.AsSpan(i * 3 * plane, 3 * plane), spec, plane);
            Blit(canvas, width, x0 + cellW + Gap, y0, cell, h, w, scale);
            Denormalize(cell, views1.AsSpan(i * 3 * plane, 3 * plane), spec, plane);
            Blit(canvas, width, x0 + 2 * (cellW + Gap), y0, cell, h, w, scale);
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var png = new MemoryStream();
        new ImageWriter().WritePng(canvas, width, height, ColorComponents.RedGreenBlue, png);
        AtomicFile.Write(pngPath, png.GetBuffer().AsSpan(0, (int)png.Length));
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

    private static void Blit(byte[] canvas, int canvasWidth, int x0, int y0, float[] cell, int h, int w, int scale)
    {
        int plane = h * w;
        for (int y = 0; y < h * scale; y++)
            for (int x = 0; x < w * scale; x++)
            {
                int p = y / scale * w + x / scale, o = ((y0 + y) * canvasWidth + x0 + x) * 3;
                for (int ch = 0; ch < 3; ch++)
                    canvas[o + ch] = (byte)Math.Clamp((int)MathF.Round(cell[ch * plane + p] * 255f), 0, 255);
            }
    }
}
