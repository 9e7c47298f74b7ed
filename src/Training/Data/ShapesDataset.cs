// The built-in `shapes` dataset: procedurally drawn colour images whose class is the SHAPE (12 classes)
// while everything else is a nuisance drawn independently of the class: foreground colour, background
// (flat colour, linear gradient or noise), position, scale, rotation and a mirror (the L comes in both
// hands, so a flipped view keeps its class). Rotation stays within ±10°: square and diamond, plus and X
// differ by 45°, so their orientations stay at least 25° apart. Colour carries no class information, so
// colour statistics of random conv features cannot separate the classes, while SimCLR's crop + colour
// invariances can. Edges are anti-aliased by 4x4 supersampling. Image i of a split has class i mod 12
// (balanced) and is a pure function of (seed, split, i), so any subset reproduces without the rest.
using SimClr.Kernels;

namespace SimClr.Training.Data;

public static class ShapesDataset
{
    public static readonly string[] Classes =
        ["disk", "ring", "square", "diamond", "triangle", "plus", "x-cross", "star", "horizontal-bar", "vertical-bar", "l-shape", "dome"];

    private const ulong Domain = 0x5348415045535F44; // "SHAPES_D"
    private const uint TestStream = 0x8000_0000;
    private const int Supersample = 4;
    internal const float MaxRotation = 10f * MathF.PI / 180f;

    public static DatasetSplits Generate(int trainCount, int testCount, ulong seed, int size = 32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainCount);
        ArgumentOutOfRangeException.ThrowIfNegative(testCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 8);
        return new DatasetSplits(Render("shapes-train", trainCount, seed, 0, size), Render("shapes-test", testCount, seed, TestStream, size));
    }

    private static ImageDataset Render(string name, int count, ulong seed, uint split, int size)
    {
        int bytes = size * size * 3;
        var images = new byte[(long)count * bytes];
        var labels = new int[count];
        Parallel.For(0, count, i =>
        {
            labels[i] = i % Classes.Length;
            var rng = new PhiloxStream(seed ^ Domain, split | (uint)i);
            Draw(images.AsSpan(i * bytes, bytes), size, labels[i], rng);
        });
        return new ImageDataset(name, new ImageSetShape(count, size, size, 3), images, labels, Classes);
    }

    private static float U(PhiloxStream rng, float lo, float hi) => lo + (float)rng.NextDouble() * (hi - lo);

    private static (float R, float G, float B) RandomColour(PhiloxStream rng) => (U(rng, 0, 1), U(rng, 0, 1), U(rng, 0, 1));

    private static float Luma((float R, float G, float B) c) => 0.299f * c.R + 0.587f * c.G + 0.114f * c.B;

    private static void Draw(Span<byte> dst, int size, int shape, PhiloxStream rng)
    {
        // Background.
        int kind = rng.NextInt(3);
        var c1 = RandomColour(rng);
        var c2 = RandomColour(rng);
        float angle = U(rng, 0, 2 * MathF.PI);
        float gx = MathF.Cos(angle), gy = MathF.Sin(angle);
        var bg = new float[size * size * 3];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int o = (y * size + x) * 3;
                float t = kind == 1 ? 0.5f + ((x + 0.5f) / size - 0.5f) * gx + ((y + 0.5f) / size - 0.5f) * gy : 0f;
                t = Math.Clamp(t, 0f, 1f);
                bg[o] = c1.R + t * (c2.R - c1.R);
                bg[o + 1] = c1.G + t * (c2.G - c1.G);
                bg[o + 2] = c1.B + t * (c2.B - c1.B);
                if (kind == 2)
                    for (int c = 0; c < 3; c++) bg[o + c] += 0.1f * (float)rng.NextGaussian();
            }
        var bgMean = kind == 1 ? ((c1.R + c2.R) / 2, (c1.G + c2.G) / 2, (c1.B + c2.B) / 2) : c1;

        // Foreground colour: any colour whose brightness differs enough from the background to be seen.
        var fg = RandomColour(rng);
        for (int tries = 0; tries < 64 && MathF.Abs(Luma(fg) - Luma(bgMean)) < 0.25f; tries++) fg = RandomColour(rng);

        // Geometry.
        float radius = size * U(rng, 0.24f, 0.38f);
        float margin = radius * 0.9f;
        float cx = U(rng, margin, size - margin), cy = U(rng, margin, size - margin);
        float rot = U(rng, -MaxRotation, MaxRotation);
        float cos = MathF.Cos(rot), sin = MathF.Sin(rot);
        float mirror = rng.NextInt(2) == 0 ? 1f : -1f;
        float reach = 1.3f * radius + 1f;

        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int o = (y * size + x) * 3;
                float coverage = 0f;
                if (MathF.Abs(x + 0.5f - cx) <= reach && MathF.Abs(y + 0.5f - cy) <= reach)
                {
                    int inside = 0;
                    for (int sy = 0; sy < Supersample; sy++)
                        for (int sx = 0; sx < Supersample; sx++)
                        {
                            float dx = (x + (sx + 0.5f) / Supersample - cx) / radius, dy = (y + (sy + 0.5f) / Supersample - cy) / radius;
                            float u = mirror * (cos * dx + sin * dy), v = -sin * dx + cos * dy;
                            if (Inside(shape, u, v)) inside++;
                        }
                    coverage = inside / (float)(Supersample * Supersample);
                }
                dst[o] = ToByte(bg[o] + coverage * (fg.R - bg[o]));
                dst[o + 1] = ToByte(bg[o + 1] + coverage * (fg.G - bg[o + 1]));
                dst[o + 2] = ToByte(bg[o + 2] + coverage * (fg.B - bg[o + 2]));
            }
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);

    /// <summary>Whether local point (u, v) (unit = the shape's radius, v pointing down) lies in the shape.</summary>
    internal static bool Inside(int shape, float u, float v)
    {
        float au = MathF.Abs(u), av = MathF.Abs(v), r2 = u * u + v * v;
        switch (shape)
        {
            case 0: return r2 <= 0.85f * 0.85f;
            case 1: return r2 <= 0.95f * 0.95f && r2 >= 0.55f * 0.55f;
            case 2: return au <= 0.75f && av <= 0.75f;
            case 3: return au + av <= 1.0f;
            case 4: return Triangle(u, v);
            case 5: return Plus(au, av);
            case 6:
                {
                    const float k = 0.70710678f;
                    return Plus(MathF.Abs(k * (u + v)), MathF.Abs(k * (v - u)));
                }
            case 7: return Star(u, v);
            case 8: return au <= 0.95f && av <= 0.22f;
            case 9: return au <= 0.22f && av <= 0.95f;
            case 10: return (u >= -0.75f && u <= -0.3f && av <= 0.9f) || (au <= 0.75f && v >= 0.45f && v <= 0.9f);
            case 11: return u * u + (v - 0.4f) * (v - 0.4f) <= 0.95f * 0.95f && v <= 0.4f;
            default: throw new ArgumentOutOfRangeException(nameof(shape));
        }
    }

    private static bool Plus(float au, float av) => (au <= 0.26f && av <= 0.95f) || (av <= 0.26f && au <= 0.95f);

    private static bool Triangle(float u, float v)
    {
        // Apex up at (0, −0.95), base at v = 0.7 from u = −0.9 to 0.9.
        if (v > 0.7f) return false;
        float halfWidth = 0.9f * (v + 0.95f) / 1.65f;
        return MathF.Abs(u) <= halfWidth;
    }

    private static readonly (float U, float V)[] StarPolygon = BuildStar();

    private static (float, float)[] BuildStar()
    {
        var p = new (float, float)[10];
        for (int k = 0; k < 10; k++)
        {
            float a = -MathF.PI / 2 + k * MathF.PI / 5, r = k % 2 == 0 ? 1.0f : 0.42f;
            p[k] = (r * MathF.Cos(a), r * MathF.Sin(a));
        }
        return p;
    }

    private static bool Star(float u, float v)
    {
        bool inside = false;
        var p = StarPolygon;
        for (int i = 0, j = p.Length - 1; i < p.Length; j = i++)
            if ((p[i].V > v) != (p[j].V > v) && u < (p[j].U - p[i].U) * (v - p[i].V) / (p[j].V - p[i].V) + p[i].U)
                inside = !inside;
        return inside;
    }
}
