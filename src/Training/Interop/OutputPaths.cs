// Commands that read one file and write another (export, embed) must never write over what they read, even
// when the two paths differ only by a symbolic link (runs/latest -> runs/20250101-..., or a linked file).
// Resolve walks the path one component at a time and replaces each link by its target, as realpath(3) does,
// so two spellings of one file compare equal.
using SimClr.Training.Cli;

namespace SimClr.Training.Interop;

public static class OutputPaths
{
    /// <summary>Links followed before giving up, as Linux's own limit for a path lookup (ELOOP).</summary>
    public const int MaxLinks = 40;

    /// <summary>The absolute path of <paramref name="path"/> with every symbolic link along it resolved.
    /// Components that do not exist are kept as written.</summary>
    public static string Resolve(string path)
    {
        string full = Path.GetFullPath(path);
        for (int links = 0; links <= MaxLinks; links++)
        {
            string root = Path.GetPathRoot(full)!;
            string[] parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            string current = root;
            string? rewritten = null;
            for (int i = 0; i < parts.Length; i++)
            {
                string next = Path.Combine(current, parts[i]);
                if (new FileInfo(next).LinkTarget is { } target)
                {
                    rewritten = Path.GetFullPath(Path.Combine([Path.GetFullPath(target, current), .. parts[(i + 1)..]]));
                    break;
                }
                current = next;
            }
            if (rewritten is null) return current;
            full = rewritten;
        }
        throw UserError.File(path, $"more than {MaxLinks} symbolic links along the path");
    }

    /// <summary>Refuses an <paramref name="output"/> that names the same file as <paramref name="input"/>.</summary>
    public static void RequireDistinct(string output, string outputOption, string input, string inputOption)
    {
        if (Resolve(output) == Resolve(input))
            throw UserError.Option(outputOption, $"{output} is the same file as {inputOption} {input}; it would be overwritten");
    }
}
