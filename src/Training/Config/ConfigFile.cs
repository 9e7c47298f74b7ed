// --config FILE: a run's config.json as the starting point of a new run, so a run can be repeated exactly or
// varied by a few flags. The file is read strictly: a key this program does not know is refused (a typo would
// otherwise be ignored silently), every choice is spelt as its flag spells it, and the where-to-write fields
// (out, name, resume) are not taken from it: a repeated run gets its own folder unless --out names one.
// Also the small-text-file read that --config and --label-subset share: a regular file of bounded size, links
// resolved first, so a FIFO or a device is refused instead of blocking or filling memory.
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SimClr.Training.Cli;

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

    /// <summary>The UTF-8 text of a regular file of at most <see cref="MaxTextBytes"/>; every failure is one line
    /// naming <paramref name="path"/> (and <paramref name="option"/>, the flag that named it).</summary>
    public static string ReadText(string path, string option)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
            if (Directory.Exists(info.FullName)) throw UserError.File(path, $"is a folder; {option} takes a file");
            if (!info.Exists) throw UserError.File(path, $"file not found ({option})");
            if (info.Length == 0) throw UserError.File(path, $"empty, or not a regular file (a FIFO or device) ({option})");
            if (info.Length > MaxTextBytes) throw UserError.File(path, $"{info.Length} bytes, more than the {MaxTextBytes} {option} reads");
            var bytes = new byte[info.Length];
            using (var stream = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1))
                stream.ReadExactly(bytes);
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw UserError.File(path, $"cannot be read ({e.Message.ReplaceLineEndings(" ")})");
        }
    }
}
