// The MPI communicator: MPI_COMM_WORLD of Open MPI over host tensors, for CPU ranks on one node or many, and the
// host side (configuration, NCCL's unique id, agreement on stopping) of a GPU job. mpirun or srun starts the
// processes; MPI_Init_thread asks for MPI_THREAD_MULTIPLE so that the watchdog may call MPI_Abort while the main
// thread waits inside a collective. Collectives are Open MPI's blocking ones (coll/tuned), in place, each armed on
// the CollectiveWatchdog: when one does not return within Timeout, the watchdog prints one line and MPI_Abort ends
// every rank with FailedJobExitCode. Errors come back as return codes (MPI_ERRORS_RETURN) and become MpiException.
// Dispose calls MPI_Finalize, which every rank must reach: on a failure path call Abort instead.
using System.Runtime.CompilerServices;
using SimClr.Kernels.Distributed.Native;

namespace SimClr.Kernels.Distributed;

public sealed unsafe class MpiCommunicator : ICommunicator
{
    /// <summary>The exit status of every rank when a collective times out or a rank fails.</summary>
    public const int FailedJobExitCode = 4;

    private readonly MpiHandles _h;
    private readonly CollectiveWatchdog _watchdog;
    private int _disposed;

    private MpiCommunicator(MpiHandles handles, int rank, int size, MpiThreadLevel threads, TimeSpan timeout, string version)
    {
        _h = handles;
        Rank = rank;
        Size = size;
        ThreadLevel = threads;
        Timeout = timeout;
        LibraryVersion = version;
        _watchdog = new CollectiveWatchdog(rank, timeout, Expire);
    }

    /// <summary>Initializes MPI (once per process) and returns MPI_COMM_WORLD. Throws MpiNotAvailableException when
    /// Open MPI cannot be loaded.</summary>
    public static MpiCommunicator Initialize(TimeSpan timeout)
    {
        var h = Mpi.Load();
        int initialized;
        Mpi.Check(Mpi.MPI_Initialized(&initialized));
        if (initialized != 0) throw new InvalidOperationException("MPI is already initialized in this process");
        MpiThreadLevel provided;
        Mpi.Check(Mpi.MPI_Init_thread(null, null, MpiThreadLevel.Multiple, &provided));
        Mpi.Check(Mpi.MPI_Comm_set_errhandler(h.CommWorld, h.ErrorsReturn));
        int rank, size;
        Mpi.Check(Mpi.MPI_Comm_rank(h.CommWorld, &rank));
        Mpi.Check(Mpi.MPI_Comm_size(h.CommWorld, &size));
        return new MpiCommunicator(h, rank, size, provided, timeout, Mpi.LibraryVersion());
    }

    public CommunicatorKind Kind => CommunicatorKind.Mpi;
    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }
    public MpiThreadLevel ThreadLevel { get; }
    public string LibraryVersion { get; }
    public string Description => $"MPI (rank {Rank} of {Size}, {LibraryVersion}, threads {ThreadLevel})";

    /// <summary>The deadline of this communicator's collectives; also arms the host's waits on NCCL work.</summary>
    public CollectiveWatchdog Watchdog => _watchdog;

    public void AllReduceSum<T>(Tensor<T> buffer) where T : unmanaged
    {
        var (type, p) = Prepare(buffer, Collective.AllReduceSum, nameof(buffer));
        using var armed = _watchdog.Arm(Collective.AllReduceSum, buffer.Length, typeof(T).Name);
        Mpi.Check(Mpi.MPI_Allreduce((void*)Mpi.InPlace, (void*)p, Count(buffer.Length), type, _h.Sum, _h.CommWorld));
    }

    public void AllGather<T>(Tensor<T> gathered, Tensor<T> contribution) where T : unmanaged
    {
        Collectives.RequireGather(gathered, contribution, Size);
        var (type, recv) = Prepare(gathered, Collective.AllGather, nameof(gathered));
        var (_, send) = Prepare(contribution, Collective.AllGather, nameof(contribution));
        int n = Count(contribution.Length);
        using var armed = _watchdog.Arm(Collective.AllGather, gathered.Length, typeof(T).Name);
        if (Collectives.IsInPlace(gathered, contribution, Rank))
            Mpi.Check(Mpi.MPI_Allgather((void*)Mpi.InPlace, 0, type, (void*)recv, n, type, _h.CommWorld));
        else
            Mpi.Check(Mpi.MPI_Allgather((void*)send, n, type, (void*)recv, n, type, _h.CommWorld));
    }

    public void Broadcast<T>(Tensor<T> buffer, int root) where T : unmanaged
    {
        Collectives.RequireRoot(root, Size);
        var (type, p) = Prepare(buffer, Collective.Broadcast, nameof(buffer));
        using var armed = _watchdog.Arm(Collective.Broadcast, buffer.Length, typeof(T).Name);
        Mpi.Check(Mpi.MPI_Bcast((void*)p, Count(buffer.Length), type, root, _h.CommWorld));
    }

    public void Barrier()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        using var armed = _watchdog.Arm(Collective.Barrier);
        Mpi.Check(Mpi.MPI_Barrier(_h.CommWorld));
    }

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (MPI_Abort); does not return.</summary>
    public void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        Mpi.MPI_Abort(_h.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    private void Expire(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        if (ThreadLevel == MpiThreadLevel.Multiple) Abort(FailedJobExitCode);
        // Without thread support MPI_Abort may not be called while the main thread is inside MPI: leaving the
        // process makes mpirun end the others.
        Console.Error.Flush();
        Environment.Exit(FailedJobExitCode);
    }

    private (nint Type, nint Pointer) Prepare<T>(Tensor<T> t, Collective collective, string name) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Collectives.RequireSupported<T>(collective);
        if (t.IsEmpty) throw new ArgumentException($"{collective}: {name} is empty", name);
        if (t.Storage.Device != DeviceKind.Cpu) throw new ArgumentException($"{collective}: {name} lives on {t.Storage.Device}; MPI carries host tensors (NCCL carries device tensors)", name);
        nint type = typeof(T) == typeof(float) ? _h.Float : typeof(T) == typeof(double) ? _h.Double : typeof(T) == typeof(int) ? _h.Int32
            : typeof(T) == typeof(long) ? _h.Int64 : _h.Byte;
        return (type, t.Address);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Count(long elements) =>
        elements <= int.MaxValue ? (int)elements : throw new ArgumentException($"a collective of {elements} elements exceeds MPI's int count");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _watchdog.Dispose();
        int finalized;
        if (Mpi.MPI_Finalized(&finalized) == MpiError.Success && finalized == 0) Mpi.Check(Mpi.MPI_Finalize());
    }
}
