// The one rule for every file the program reads (checkpoints, dataset files, class-name lists, metrics on
// resume, image files):
//   - the path is opened without blocking and then checked, so a FIFO, a device, a socket or a folder is
//     refused at once, by name, instead of hanging the open or streaming forever (/dev/zero);
//   - links are resolved by the open itself, so the size checked is the size of the file the link names,
//     and identities (device, inode) compare what paths finally name (RealPath spells that final path, for
//     messages and for comparing paths that need not exist yet);
//   - the size is bounded before anything is allocated (callers that decompress bound the inflated size
//     themselves, see DataFiles);
//   - a missing file, a permission problem or an I/O error is one UserError naming the file.
// The checks and the reads happen on the same open descriptor, so a file swapped between them is not read.
using System.Text;
using Microsoft.Win32.SafeHandles;
using SimClr.Training.Cli;

namespace SimClr.Training.Io;

/// <summary>What a path names once its links are followed.</summary>
public enum FileKind { Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

/// <summary>The device and inode of a file or folder: equal identities are the same file, whatever the paths.</summary>
public readonly record struct FileIdentity(ulong Device, ulong Inode);

public static unsafe class SafeFile
{
    /// <summary>The largest file read into one array.</summary>
    public static readonly long MaxBytes = Array.MaxLength;

    /// <summary>Links followed before giving up, as Linux's own limit for a path lookup (ELOOP).</summary>
    public const int MaxLinks = 40;

    /// <summary>Opens <paramref name="path"/> for reading: it must be a regular file (after links) of at most
    /// <paramref name="maxBytes"/> bytes. The stream's Length is the size checked.</summary>
    public static FileStream OpenRead(string path, long maxBytes)
    {
        RequireValidPath(path);
        int fd = LibC.Open(path, LibC.ORdOnly | LibC.ONonBlock | LibC.OCloExec);
        if (fd < 0) throw OpenError(path, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var (kind, size, _) = Stat(fd, "", LibC.AtEmptyPath) ?? throw UserError.File(path, "cannot be examined (statx failed)");
            if (kind != FileKind.Regular) throw NotRegular(path, kind);
            if (size > maxBytes) throw UserError.File(path, $"is {size} bytes, more than the {maxBytes} bytes accepted here; this is not the expected file");
            return new FileStream(handle, FileAccess.Read, bufferSize: 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The whole of <paramref name="path"/> under the read rule.</summary>
    public static byte[] ReadAll(string path, long maxBytes)
    {
        using var stream = OpenRead(path, maxBytes);
        var bytes = new byte[stream.Length];
        ReadExactly(path, stream, bytes);
        return bytes;
    }

    /// <summary>The whole of <paramref name="path"/> as UTF-8 text (invalid sequences become U+FFFD).</summary>
    public static string ReadText(string path, long maxBytes) => Encoding.UTF8.GetString(ReadAll(path, maxBytes));

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="stream"/>, turning I/O errors and a file
    /// that ends early (it shrank while being read) into one line naming <paramref name="path"/>.</summary>
    public static void ReadExactly(string path, Stream stream, Span<byte> buffer)
    {
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw UserError.File(path, "ended early (did it change while being read?)"); }
        catch (IOException e) { throw UserError.File(path, $"cannot be read ({e.Message})"); }
        catch (UnauthorizedAccessException e) { throw UserError.File(path, $"cannot be read ({e.Message})"); }
    }

    /// <summary>The kind of what <paramref name="path"/> names after links, or null when nothing is there
    /// (or it cannot be examined).</summary>
    public static FileKind? KindOf(string path) =>
        IsValidPath(path) && Stat(LibC.AtFdCwd, path, 0) is { } s ? s.Kind : null;

    /// <summary>The identity of what <paramref name="path"/> names after links, or null when nothing is there.</summary>
    public static FileIdentity? Identity(string path) =>
        IsValidPath(path) && Stat(LibC.AtFdCwd, path, 0) is { } s ? s.Identity : null;

    /// <summary>Whether two paths name the same file or folder once links are resolved (false when either is absent).</summary>
    public static bool SameFile(string a, string b) => Identity(a) is { } x && Identity(b) is { } y && x == y;

    /// <summary>The absolute path of <paramref name="path"/> with every symbolic link along it resolved, walked one
    /// component at a time as realpath(3) does. Components that do not exist are kept as written.</summary>
    public static string RealPath(string path)
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

    private static (FileKind Kind, long Size, FileIdentity Identity)? Stat(int dirFd, string path, int flags)
    {
        byte* buf = stackalloc byte[LibC.StatxSize];
        if (LibC.Statx(dirFd, path, flags, LibC.StatxBasicStats, buf) != 0) return null;
        int mode = *(ushort*)(buf + LibC.StatxModeOffset);
        var kind = (mode & LibC.SIfMt) switch
        {
            LibC.SIfReg => FileKind.Regular,
            LibC.SIfDir => FileKind.Directory,
            LibC.SIfIfo => FileKind.Fifo,
            LibC.SIfChr => FileKind.CharacterDevice,
            LibC.SIfBlk => FileKind.BlockDevice,
            LibC.SIfSock => FileKind.Socket,
            _ => FileKind.Other,
        };
        ulong device = (ulong)*(uint*)(buf + LibC.StatxDevMajorOffset) << 32 | *(uint*)(buf + LibC.StatxDevMinorOffset);
        return (kind, (long)Math.Min(*(ulong*)(buf + LibC.StatxSizeOffset), long.MaxValue), new FileIdentity(device, *(ulong*)(buf + LibC.StatxInoOffset)));
    }

    private static bool IsValidPath(string path) => path.Length > 0 && !path.Contains('\0');

    private static void RequireValidPath(string path)
    {
        if (!IsValidPath(path)) throw UserError.File(path.Replace("\0", "\\0"), path.Length == 0 ? "an empty path names no file" : "the path holds a NUL character");
    }

    private static UserError NotRegular(string path, FileKind kind) => UserError.File(path, kind switch
    {
        FileKind.Directory => "is a folder, not a file",
        FileKind.Fifo => "is a FIFO (named pipe), not a regular file; refused, since reading it could wait forever",
        FileKind.CharacterDevice or FileKind.BlockDevice => "is a device, not a regular file",
        FileKind.Socket => "is a socket, not a regular file",
        _ => "is not a regular file",
    });

    private static UserError OpenError(string path, int errno) => UserError.File(path, errno switch
    {
        LibC.ENoEnt => "file not found",
        LibC.EAcces or LibC.EPerm => "cannot be read: permission denied (check the permissions of the file and its folders)",
        LibC.ELoop => "cannot be opened: too many levels of symbolic links (a link loop?)",
        LibC.ENotDir => "file not found (a part of the path is not a folder)",
        LibC.ENxIo => "is a socket or a device without a driver, not a regular file",
        LibC.ENameTooLong => "the path is too long",
        _ => $"cannot be opened ({LibC.Describe(errno)})",
    });
}
