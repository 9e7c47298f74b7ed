// Commands that read one file and write another (export, embed) must never write over what they read, even
// when the two paths differ only by a symbolic link (runs/latest -> runs/20250101-..., or a linked file).
// Resolve (Io/SafeFile.RealPath) replaces each link along the path by its target, as realpath(3) does, so two
// spellings of one file compare equal.
using SimClr.Training.Cli;
using SimClr.Training.Io;

namespace SimClr.Training.Interop;

public static class OutputPaths
{
    /// <summary>The absolute path of <paramref name="path"/> with every symbolic link along it resolved
    /// (SafeFile.RealPath). Components that do not exist are kept as written.</summary>
    public static string Resolve(string path) => SafeFile.RealPath(path);

    /// <summary>Refuses an <paramref name="output"/> that names the same file as <paramref name="input"/>.</summary>
    public static void RequireDistinct(string output, string outputOption, string input, string inputOption)
    {
        if (Resolve(output) == Resolve(input))
            throw UserError.Option(outputOption, $"{output} is the same file as {inputOption} {input}; it would be overwritten");
    }
}
