// The few libc calls the file rules need and .NET does not expose: open without blocking (so a FIFO cannot
// hang the open), statx (the file type and the size of what a path finally names; its struct layout is the
// same on every Linux architecture, unlike struct stat), fsync of a folder, and kill(pid, 0) to ask whether
// a process is alive. Linux only (glibc ≥ 2.28 for statx), like the rest of the program. errno numbers are
// Linux's generic ones, shared by x86-64 and arm64.
using System.Runtime.InteropServices;

namespace SimClr.Training.Io;

internal static unsafe partial class LibC
{
    public const int ORdOnly = 0, ONonBlock = 0x800, OCloExec = 0x80000;
    public const int AtFdCwd = -100, AtEmptyPath = 0x1000;
    public const uint StatxBasicStats = 0x7ff;

    public const int EPerm = 1, ENoEnt = 2, ENxIo = 6, EAcces = 13, ENotDir = 20, EInval = 22,
        ENoSpc = 28, ERoFs = 30, ENameTooLong = 36, ELoop = 40, EDQuot = 122;

    /// <summary>struct statx is 256 bytes; these are the offsets of the fields read here (linux/stat.h).</summary>
    public const int StatxSize = 256, StatxModeOffset = 28, StatxInoOffset = 32, StatxSizeOffset = 40, StatxDevMajorOffset = 136, StatxDevMinorOffset = 140;

    public const int SIfMt = 0xF000, SIfReg = 0x8000, SIfDir = 0x4000, SIfIfo = 0x1000, SIfChr = 0x2000, SIfBlk = 0x6000, SIfSock = 0xC000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>The C library's text for <paramref name="errno"/> ("Permission denied", ...).</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
