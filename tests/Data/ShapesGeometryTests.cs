// The shape classes stay distinct under every nuisance the generator applies: for each pair of classes,
// over the allowed rotations, mirrors and a range of relative scales, their masks never overlap closely.
// Two different convex blobs of similar area overlap up to about 0.84 (disk vs square); a duplicated
// class, or a rotation range wide enough to turn a square into a diamond (±20° gives 0.89), goes above.
using SimClr.Training.Data;

namespace SimClr.Tests.Data;

public class ShapesGeometryTests
{
    private const int Grid = 64;

    private static bool[] Mask(int shape, float rotation, float mirror, float scale)
    {
        var m = new bool[Grid * Grid];
        float cos = MathF.Cos(rotation), sin = MathF.Sin(rotation);
        for (int y = 0; y < Grid; y++)
            for (int x = 0; x < Grid; x++)
            {
                float dx = (-1.3f + 2.6f * (x + 0.5f) / Grid) / scale, dy = (-1.3f + 2.6f * (y + 0.5f) / Grid) / scale;
                m[y * Grid + x] = ShapesDataset.Inside(shape, mirror * (cos * dx + sin * dy), -sin * dx + cos * dy);
            }
        return m;
    }

    private static double IoU(bool[] a, bool[] b)
    {
        int inter = 0, union = 0;
        for (int i = 0; i < a.Length; i++) { inter += a[i] && b[i] ? 1 : 0; union += a[i] || b[i] ? 1 : 0; }
        return inter / (double)Math.Max(union, 1);
    }

    [Fact]
    public void NoTwoClassesLookAlikeUnderTheNuisances()
    {
        int k = ShapesDataset.Classes.Length;
        float r = ShapesDataset.MaxRotation;
        float[] rotations = [-r, 0, r];
        float[] scales = [0.8f, 1f, 1.25f];
        var masks = new List<bool[]>[k];
        for (int c = 0; c < k; c++)
        {
            masks[c] = [];
            foreach (var rot in rotations)
                foreach (var mirror in new[] { 1f, -1f })
                    foreach (var s in scales)
                        masks[c].Add(Mask(c, rot, mirror, s));
        }
        var worst = new List<string>();
        double max = 0;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
            {
                double best = 0;
                foreach (var ma in masks[a].Where((_, i) => i % scales.Length == 1))
                    foreach (var mb in masks[b])
                        best = Math.Max(best, IoU(ma, mb));
                max = Math.Max(max, best);
                worst.Add($"{ShapesDataset.Classes[a]}/{ShapesDataset.Classes[b]} {best:F2}");
            }
        Assert.True(max < 0.86, "closest pairs: " + string.Join(", ", worst.OrderByDescending(s => s[^4..]).Take(5)));
    }
}
