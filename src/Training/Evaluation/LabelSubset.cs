// The labelled images of the semi-supervised protocol: a class-balanced subset of the training split, drawn from
// the seed. Each class keeps round(fraction · its count) images (at least one), or exactly K with
// --labels-per-class, so a 1 % subset of a balanced set has the same share of every class, as the paper's
// ImageNet subsets do. The draw walks one seeded permutation of the training indices and takes an image while
// its class is short, so the subset depends only on (seed, labels, rule). It is written to the run directory as
// label-subset.txt (a comment line, then one training-split index per line) and can be read back with
// --label-subset to repeat a run on exactly the same images, or to use a subset chosen elsewhere.
using System.Globalization;
using SimClr.Kernels;
using SimClr.Training.Cli;

namespace SimClr.Training.Evaluation;

public sealed record LabelSubset(int[] Indices, string Rule)
{
    private const uint Stream = 0x1ABE15;

    public int Count => Indices.Length;

    /// <summary>Draws the subset of <paramref name="labels"/> (all in [0, classes)) for a fraction or a per-class count.</summary>
    public static LabelSubset Draw(IReadOnlyList<int> labels, int classes, double? fraction, int? perClass, ulong seed)
    {
        if ((fraction is null) == (perClass is null)) throw new ArgumentException("give exactly one of a label fraction and a per-class count");
        var counts = new int[classes];
        foreach (int l in labels) counts[l]++;
        var want = new int[classes];
        for (int c = 0; c < classes; c++)
        {
            if (counts[c] == 0) continue;
            if (perClass is { } k)
            {
                if (k > counts[c]) throw UserError.Option("--labels-per-class", $"{k} exceeds the {counts[c]} training images of class {c}");
                want[c] = k;
            }
            else want[c] = Math.Clamp((int)Math.Round(fraction!.Value * counts[c], MidpointRounding.AwayFromZero), 1, counts[c]);
        }
        var taken = new int[classes];
        var picked = new List<int>(want.Sum());
        foreach (int i in new PhiloxStream(seed, Stream).Permutation(labels.Count))
            if (taken[labels[i]] < want[labels[i]])
            {
                taken[labels[i]]++;
                picked.Add(i);
            }
        picked.Sort();
        string rule = perClass is { } kk
            ? $"{kk} labelled images per class, seed {seed}"
            : string.Create(CultureInfo.InvariantCulture, $"{fraction:P1} of each class's labels, seed {seed}");
        return new LabelSubset([.. picked], rule);
    }

    public void Write(string path, string dataset)
    {
        var lines = new List<string> { $"# {Count} labelled images of {dataset}'s training split ({Rule}); one training-split index per line" };
        lines.AddRange(Indices.Select(i => i.ToString(CultureInfo.InvariantCulture)));
        try
        {
            Io.AtomicFile.WriteText(path, string.Join('\n', lines) + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(path, $"cannot be written ({e.Message})");
        }
    }

    /// <summary>A subset written by <see cref="Write"/> (or by hand): indices into a training split of
    /// <paramref name="trainCount"/> images, each at most once; '#' lines are comments.</summary>
    public static LabelSubset Read(string path, int trainCount)
    {
        var lines = Config.ConfigFile.ReadText(path, "--label-subset").Split('\n');
        var seen = new HashSet<int>();
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (!int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int i) || i >= trainCount)
                throw UserError.File(path, $"line {n + 1} is not an index into the {trainCount} training images");
            if (!seen.Add(i)) throw UserError.File(path, $"line {n + 1} repeats index {i}");
        }
        if (seen.Count == 0) throw UserError.File(path, "holds no indices");
        return new LabelSubset([.. seen.Order()], $"read from {path}");
    }
}
