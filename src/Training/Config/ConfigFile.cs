// --config FILE: a run's config.json as the starting point of a new run, so a run can be repeated exactly or
// varied by a few flags. The file is read strictly: a key this program does not know is refused (a typo would
// otherwise be ignored silently), every choice is spelt as its flag spells it, and the where-to-write fields
// (out, name, resume) are not taken from it: a repeated run gets its own folder unless --out names one.
// Also the small-text-file read that --config and --label-subset share, over Io/SafeFile's read rule.
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SimClr.Training.Cli;
using SimClr.Training.Io;

namespace SimClr.Training.Config;

public static class ConfigFile
{
    public const long MaxTextBytes = 16L << 20;

    private static readonly JsonSerializerOptions Strict = new(RunConfig.Json) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    /// <summary>The settings of the run whose config.json is <paramref name="path"/>, without its out, name and resume.</summary>
    public static RunConfig Load(string path)
    {
        string json = ReadText(path, "--config");
        RunConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<RunConfig>(json, Strict);
        }
        catch (JsonException e)
        {
            throw UserError.File(path, $"is not a run's config.json ({e.Message})");
        }
        if (config is null) throw UserError.File(path, "is not a run's config.json (it holds null)");
        return config with { Out = null, Name = null, Resume = null, AugmentOverrides = config.AugmentOverrides ?? new AugmentOverrides() };
    }

    /// <summary>The UTF-8 text of a regular file of at most <see cref="MaxTextBytes"/>, read under the program's one
    /// read rule (Io/SafeFile: folders, FIFOs and devices refused by name, the size bounded on the open file); an
    /// empty file or one that is not UTF-8 is refused too. Every failure is one line naming <paramref name="path"/>
    /// (and <paramref name="option"/>, the flag that named it, where the problem is the content).</summary>
    public static string ReadText(string path, string option)
    {
        byte[] bytes = SafeFile.ReadAll(path, MaxTextBytes);
        if (bytes.Length == 0) throw UserError.File(path, $"is empty ({option} takes a text file)");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw UserError.File(path, $"is not UTF-8 text ({option} takes a text file)");
        }
    }
}
