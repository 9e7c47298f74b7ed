// The one rule for every file the program writes whole (checkpoints, config.json, summary.json, plots,
// previews, exports): the bytes go to "<name>.tmp-<pid>" beside the target, are fsynced, and the temporary
// file is renamed over the target, then the folder is fsynced so the rename itself survives a crash.
// Readers therefore see the old content or the new, never a torn file. A write that fails removes its
// temporary file and becomes one line (WriteFailure) saying what to free or change; nothing earlier is
// touched. A process killed mid-write leaves its temporary file behind: RemoveStale, called when a run
// starts in a folder, deletes those whose process is gone.
// Files that grow by appends (the metrics logs) follow Append instead: one write per record, cut back to the
// length before when it fails, so the file always ends after a whole record and the earlier ones are untouched.
using System.Text;
using System.Text.RegularExpressions;
using SimClr.Training.Cli;

namespace SimClr.Training.Io;

public static partial class AtomicFile
{
    public const string TempMarker = ".tmp-";

    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        string full = Path.GetFullPath(path);
        string tmp = full + TempMarker + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        bool renamed = false;
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                fs.Write(content);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            renamed = true;
            SyncFolder(Path.GetDirectoryName(full)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw WriteFailure.For(full, e);
        }
        finally
        {
            if (!renamed) TryDelete(tmp);
        }
    }

    public static void WriteText(string path, string text) => Write(path, Encoding.UTF8.GetBytes(text));

    /// <summary>Appends <paramref name="bytes"/> to <paramref name="path"/> with one write; on failure the file is
    /// cut back to its length before and the failure is one line (WriteFailure).</summary>
    public static void Append(string path, ReadOnlySpan<byte> bytes)
    {
        FileStream? file = null;
        long before = -1;
        try
        {
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0);
            before = file.Seek(0, SeekOrigin.End);
            file.Write(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (file is not null && before >= 0)
            {
                try { file.SetLength(before); }
                catch (IOException)
                {
                    // Cutting back failed too; readers skip a torn last record, so the earlier ones still read.
                }
            }
            throw WriteFailure.For(path, e);
        }
        finally { file?.Dispose(); }
    }

    /// <summary>Deletes the temporary files in <paramref name="folder"/> left by writers that were killed (their
    /// process is gone, or has this process's id and so cannot be mid-write); returns the paths removed.</summary>
    public static IReadOnlyList<string> RemoveStale(string folder)
    {
        var removed = new List<string>();
        if (!Directory.Exists(folder)) return removed;
        foreach (var path in Directory.EnumerateFiles(folder, "*" + TempMarker + "*"))
        {
            var m = TempName().Match(Path.GetFileName(path));
            if (!m.Success || !int.TryParse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture, out int pid)) continue;
            if (pid != Environment.ProcessId && IsAlive(pid)) continue;
            try { File.Delete(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailure.For(path, e); }
            removed.Add(path);
        }
        return removed;
    }

    /// <summary>Whether <paramref name="pid"/> names a running process (kill with signal 0 only asks).</summary>
    private static bool IsAlive(int pid) =>
        LibC.Kill(pid, 0) == 0 || System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == LibC.EPerm;

    /// <summary>Makes a rename in <paramref name="folder"/> durable. File systems that cannot sync a folder
    /// answer EINVAL; their renames are as durable as they get, so that is not an error.</summary>
    private static void SyncFolder(string folder)
    {
        int fd = LibC.Open(folder, LibC.ORdOnly | LibC.OCloExec);
        if (fd < 0) throw WriteFailure.For(folder, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        try
        {
            if (LibC.FSync(fd) != 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() is int errno && errno != LibC.EInval)
                throw WriteFailure.For(folder, errno);
        }
        finally { LibC.Close(fd); }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The write already failed and that failure is what the user sees; a temporary file that cannot be
            // deleted either (read-only disk) is removed by RemoveStale at the next start in this folder.
        }
    }

    [GeneratedRegex(@"\.tmp-(\d+)$")]
    private static partial Regex TempName();
}

/// <summary>Why a write failed, as one line that names the path and says what to free or change.</summary>
public static class WriteFailure
{
    public static UserError For(string path, Exception e) => new($"{path}: cannot be written: {Reason(e)}", ExitCode.CannotWrite);

    public static UserError For(string path, int errno) => new($"{path}: cannot be written: {Reason(errno, LibC.Describe(errno))}", ExitCode.CannotWrite);

    private static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => Reason(LibC.EAcces, e.Message),
        DirectoryNotFoundException => "its folder does not exist (was it removed while the program ran?)",
        IOException io => Reason(io.HResult, io.Message),
        _ => e.Message,
    };

    // On Linux, .NET's IOException carries the errno as its HResult.
    private static string Reason(int errno, string message) => errno switch
    {
        LibC.ENoSpc or LibC.EDQuot => "the disk is full (no space left on the device or quota exceeded); free space there or write somewhere else, nothing written earlier was changed",
        LibC.ERoFs => "the file system is read-only; remount it writable or write somewhere else",
        LibC.EAcces or LibC.EPerm => "permission denied; change the folder's permissions or write somewhere else",
        _ => $"{OneLine(message)}",
    };

    private static string OneLine(string s) => string.Join(' ', s.Split(['\n', '\r'], StringSplitOptions.RemoveEmptyEntries));
}
