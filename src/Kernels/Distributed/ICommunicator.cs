// The communicator contract of data parallelism: a group of Size ranks (one process per device, or threads in a
// test) and four blocking-in-order collectives on backend tensors. Every rank calls the same collectives in the same
// order with the same element counts; a collective either completes on every rank or fails on every rank that waits
// in it, within Timeout, with a CommunicatorException naming the rank and the collective (never a hang).
// Element types: float, double, int, long, byte. Implementations: SingleProcessCommunicator (the default, no MPI),
// SharedMemoryCommunicator (ranks as threads of one process, host tensors), MpiCommunicator (Open MPI, host tensors,
// processes on any number of nodes) and NcclCommunicator (device tensors of a CudaBackend, queued on its stream).
// All-reduce results are identical on every rank (each implementation reduces in one order for all of them), which
// keeps LARS and the parameters identical without ever broadcasting them again.
namespace SimClr.Kernels.Distributed;

public enum CommunicatorKind { SingleProcess, SharedMemory, Mpi, Nccl }

/// <summary>The operations a communicator runs, for messages; DeviceWait is the host's wait for a stream that holds
/// NCCL collectives.</summary>
public enum Collective { AllReduceSum, AllGather, Broadcast, Barrier, DeviceWait }

public interface ICommunicator : IDisposable
{
    CommunicatorKind Kind { get; }
    /// <summary>This rank, in [0, Size).</summary>
    int Rank { get; }
    int Size { get; }
    /// <summary>How long a collective waits for the other ranks before it fails.</summary>
    TimeSpan Timeout { get; }
    /// <summary>One line for logs: kind, rank and size, library.</summary>
    string Description { get; }

    /// <summary>buffer ← Σ over ranks of buffer, in place, the same bits on every rank.</summary>
    void AllReduceSum<T>(Tensor<T> buffer) where T : unmanaged;

    /// <summary>gathered[r·n, (r+1)·n) ← rank r's contribution (n = contribution.Length, gathered.Length = Size·n).
    /// The contribution may be this rank's own slice of gathered (in place).</summary>
    void AllGather<T>(Tensor<T> gathered, Tensor<T> contribution) where T : unmanaged;

    /// <summary>buffer ← root's buffer on every rank.</summary>
    void Broadcast<T>(Tensor<T> buffer, int root) where T : unmanaged;

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
}

/// <summary>A collective failed: a rank failed or left, a rank stopped answering within the timeout, or the ranks
/// disagree about the operation.</summary>
public sealed class CommunicatorException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Argument checks shared by the implementations.</summary>
public static class Collectives
{
    /// <summary>The element types every communicator carries.</summary>
    public static bool IsSupported<T>() where T : unmanaged =>
        typeof(T) == typeof(float) || typeof(T) == typeof(double) || typeof(T) == typeof(int) || typeof(T) == typeof(long) || typeof(T) == typeof(byte);

    public static void RequireSupported<T>(Collective collective) where T : unmanaged
    {
        if (!IsSupported<T>()) throw new ArgumentException($"{collective}: element type {typeof(T).Name} is not one of float, double, int, long, byte");
    }

    public static void RequireGather<T>(Tensor<T> gathered, Tensor<T> contribution, int size) where T : unmanaged
    {
        RequireSupported<T>(Collective.AllGather);
        if (gathered.IsEmpty || contribution.IsEmpty) throw new ArgumentException("AllGather: the tensors must not be empty");
        if (gathered.Length != size * contribution.Length)
            throw new ArgumentException($"AllGather: gathered holds {gathered.Length} elements but {size} ranks × {contribution.Length} are needed");
    }

    public static void RequireRoot(int root, int size)
    {
        if ((uint)root >= (uint)size) throw new ArgumentOutOfRangeException(nameof(root), $"Broadcast: root {root} is not a rank of a group of {size}");
    }

    /// <summary>True when <paramref name="contribution"/> is rank <paramref name="rank"/>'s own slice of <paramref name="gathered"/>.</summary>
    public static bool IsInPlace<T>(Tensor<T> gathered, Tensor<T> contribution, int rank) where T : unmanaged =>
        ReferenceEquals(gathered.Storage, contribution.Storage) && contribution.Offset == gathered.Offset + rank * contribution.Length;
}
