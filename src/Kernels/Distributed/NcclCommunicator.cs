// The NCCL communicator: device tensors of one CudaBackend (one rank per GPU), every collective queued on the
// backend's stream, so it runs in order with the kernels around it and the host never waits for it. The unique id
// comes from rank 0 (ncclGetUniqueId) and reaches the others over the host communicator (MPI), which also carries
// everything else that is not a device tensor. NCCL calls return at once; a collective that never completes shows
// up where the host waits on the stream, so those waits (Barrier here, the loss read in training) run under the
// host communicator's watchdog (WaitForDevice), which ends the job. All-reduce results are the same on every rank
// (NCCL reduces each element once, in one order, and broadcasts it).
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Distributed.Native;

namespace SimClr.Kernels.Distributed;

public sealed unsafe class NcclCommunicator : ICommunicator
{
    private readonly CudaBackend _backend;
    private readonly NcclCommHandle _comm;
    private readonly CollectiveWatchdog? _watchdog;
    private readonly Storage<float> _token;
    private int _disposed;

    private NcclCommunicator(CudaBackend backend, NcclCommHandle comm, int rank, int size, TimeSpan timeout, CollectiveWatchdog? watchdog)
    {
        _backend = backend;
        _comm = comm;
        Rank = rank;
        Size = size;
        Timeout = timeout;
        _watchdog = watchdog;
        _token = backend.Allocate<float>(1);
        LibraryVersion = Nccl.LibraryVersion();
    }

    /// <summary>Joins every rank of <paramref name="host"/> in one NCCL communicator over <paramref name="backend"/>'s
    /// device (the ranks call it together). <paramref name="watchdog"/> guards the initialization and the host's waits.</summary>
    public static NcclCommunicator Create(CudaBackend backend, ICommunicator host, CollectiveWatchdog? watchdog)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(host);
        Nccl.Load();
        using var id = new HostStorage<byte>(Nccl.UniqueIdBytes);
        var idTensor = id.AsTensor();
        NcclUniqueId unique;
        if (host.Rank == 0)
        {
            Nccl.Check(Nccl.ncclGetUniqueId(&unique));
            new ReadOnlySpan<byte>(unique.Internal, Nccl.UniqueIdBytes).CopyTo(idTensor.Span);
        }
        host.Broadcast(idTensor, root: 0);
        idTensor.Span.CopyTo(new Span<byte>(unique.Internal, Nccl.UniqueIdBytes));
        backend.EnsureCurrent();
        NcclCommHandle comm;
        using (watchdog?.Arm(Collective.Barrier))
            comm = NcclCommHandle.InitRank(backend.Context, host.Size, unique, host.Rank);
        return new NcclCommunicator(backend, comm, host.Rank, host.Size, host.Timeout, watchdog);
    }

    public CommunicatorKind Kind => CommunicatorKind.Nccl;
    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }
    public Version LibraryVersion { get; }
    public string Description => $"NCCL {LibraryVersion} (rank {Rank} of {Size}, {_backend.Info.Name})";

    public void AllReduceSum<T>(Tensor<T> buffer) where T : unmanaged
    {
        var p = Pointer(buffer, nameof(buffer));
        Nccl.Check(Nccl.ncclAllReduce((void*)p, (void*)p, (nuint)buffer.Length, Nccl.DataType<T>(), NcclRedOp.Sum, _comm.DangerousGetHandle(), _backend.Stream));
    }

    public void AllGather<T>(Tensor<T> gathered, Tensor<T> contribution) where T : unmanaged
    {
        Collectives.RequireGather(gathered, contribution, Size);
        // In place when contribution is this rank's slice of gathered: NCCL detects it from the pointers.
        var recv = Pointer(gathered, nameof(gathered));
        var send = Pointer(contribution, nameof(contribution));
        Nccl.Check(Nccl.ncclAllGather((void*)send, (void*)recv, (nuint)contribution.Length, Nccl.DataType<T>(), _comm.DangerousGetHandle(), _backend.Stream));
    }

    public void Broadcast<T>(Tensor<T> buffer, int root) where T : unmanaged
    {
        Collectives.RequireRoot(root, Size);
        var p = Pointer(buffer, nameof(buffer));
        Nccl.Check(Nccl.ncclBroadcast((void*)p, (void*)p, (nuint)buffer.Length, Nccl.DataType<T>(), root, _comm.DangerousGetHandle(), _backend.Stream));
    }

    /// <summary>An all-reduce of one float, waited for: returns once every rank's stream has reached it.</summary>
    public void Barrier()
    {
        AllReduceSum(_token.AsTensor());
        WaitForDevice();
    }

    /// <summary>Waits for the stream (and the collectives on it) under the watchdog, then reports an asynchronous
    /// NCCL error if one occurred.</summary>
    public void WaitForDevice()
    {
        using (_watchdog?.Arm(Collective.DeviceWait)) _backend.Synchronize();
        NcclResult error;
        Nccl.Check(Nccl.ncclCommGetAsyncError(_comm.DangerousGetHandle(), &error));
        Nccl.Check(error, "ncclCommGetAsyncError(comm, &error) → error");
    }

    private nint Pointer<T>(Tensor<T> t, string name) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Nccl.DataType<T>();
        _backend.EnsureCurrent();
        return _backend.DevicePointer(t, t.Length, name);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        using (_watchdog?.Arm(Collective.DeviceWait)) _backend.Synchronize();
        _comm.Dispose();
        _token.Dispose();
    }
}
