// The group of one: what a run without a launcher uses, so that one device needs no MPI and nothing changes.
// Every collective is the identity (the sum over one rank, the broadcast from oneself), except that a gather into
// a separate buffer copies the contribution: on the host directly, on a device through the backend the tensors
// belong to (given to the constructor): a device copy for float tensors (the model's z and log-sum-exps, when a
// single process trains through the data-parallel code path with --sync-bn on), host staging for the others.
using System.Runtime.CompilerServices;

namespace SimClr.Kernels.Distributed;

public sealed class SingleProcessCommunicator(IBackend<float>? backend = null) : ICommunicator
{
    public CommunicatorKind Kind => CommunicatorKind.SingleProcess;
    public int Rank => 0;
    public int Size => 1;
    public TimeSpan Timeout => System.Threading.Timeout.InfiniteTimeSpan;
    public string Description => "single process (rank 0 of 1)";

    public void AllReduceSum<T>(Tensor<T> buffer) where T : unmanaged => Collectives.RequireSupported<T>(Collective.AllReduceSum);

    public void AllGather<T>(Tensor<T> gathered, Tensor<T> contribution) where T : unmanaged
    {
        Collectives.RequireGather(gathered, contribution, 1);
        if (Collectives.IsInPlace(gathered, contribution, 0)) return;
        if (gathered.Storage.Device == DeviceKind.Cpu && contribution.Storage.Device == DeviceKind.Cpu)
        {
            contribution.Span.CopyTo(gathered.Span);
            return;
        }
        if (backend is null) throw new InvalidOperationException("AllGather of device tensors: construct the single-process communicator with their backend");
        if (typeof(T) == typeof(float))
        {
            backend.Copy(Unsafe.As<Tensor<T>, Tensor<float>>(ref gathered), Unsafe.As<Tensor<T>, Tensor<float>>(ref contribution));
            return;
        }
        var host = new T[contribution.Length];
        backend.Download<T>(host, contribution);
        backend.Upload<T>(gathered, host);
    }

    public void Broadcast<T>(Tensor<T> buffer, int root) where T : unmanaged
    {
        Collectives.RequireSupported<T>(Collective.Broadcast);
        Collectives.RequireRoot(root, 1);
    }

    public void Barrier() { }

    public void Dispose() { }
}
