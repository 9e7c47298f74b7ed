// What the pretraining loop asks of data parallelism, in one place (the loop itself stays that of one process):
// - the rank's contiguous slice [r·b, (r+1)·b) of the step's B sample indices, so the global order, and with it
//   every augmentation (a function of seed, epoch, sample and view), is the same at any world size;
// - one all-reduce (sum) of the flat gradient buffer after the backward: the model's loss is the global mean, so
//   the sum of the ranks' shares is the gradient of one process with the whole batch, and LARS then runs
//   identically on every rank;
// - agreement on stopping: a Ctrl-C on any rank stops every rank at the same step;
// - the watchdog around the host's waits for the device (NCCL collectives never time out by themselves);
// - who writes: rank 0 alone.
// For a single process every call is the identity and costs nothing.
using SimClr.Kernels;
using SimClr.Kernels.Distributed;
using SimClr.Layers;
using SimClr.Training.Checkpoints;

namespace SimClr.Training.Distributed;

public sealed class DataParallel : IDisposable
{
    private readonly DataParallelLaunch? _launch;
    private readonly bool _ownsTensors;
    private readonly HostStorage<int>? _stopFlag;

    internal DataParallel(DataParallelLaunch? launch, ICommunicator tensors, bool ownsTensors)
    {
        _launch = launch;
        Tensors = tensors;
        _ownsTensors = ownsTensors;
        if (tensors.Size > 1) _stopFlag = new HostStorage<int>(1);
    }

    /// <summary>One process, no launcher.</summary>
    public static DataParallel Single { get; } = new(null, new SingleProcessCommunicator(), ownsTensors: false);

    /// <summary>The communicator of the gradients and of the model's collectives.</summary>
    public ICommunicator Tensors { get; }
    public int Rank => Tensors.Rank;
    public int Size => Tensors.Size;
    public bool IsWriter => Rank == 0;

    /// <summary>This rank's part of a step's global batch of sample indices.</summary>
    public ReadOnlySpan<int> Slice(ReadOnlySpan<int> globalBatch)
    {
        int pairs = globalBatch.Length / Size;
        return globalBatch.Slice(Rank * pairs, pairs);
    }

    /// <summary>Sums the gradients of every rank into every rank's flat gradient buffer.</summary>
    public void AllReduceGradients(ParameterStore<float> store)
    {
        if (Size > 1) Tensors.AllReduceSum(store.Gradients);
    }

    /// <summary>True on every rank when any rank asks to stop (a collective in a job).</summary>
    public bool AgreeToStop(bool stopHere)
    {
        if (_stopFlag is null) return stopHere;
        var flag = _stopFlag.AsTensor();
        flag.Span[0] = stopHere ? 1 : 0;
        _launch!.Host.AllReduceSum(flag);
        return flag.Span[0] > 0;
    }

    /// <summary>Runs a host wait for the device (a loss read) under the watchdog when NCCL collectives may be queued.</summary>
    public void WaitForDevice(Action wait)
    {
        if (Tensors is NcclCommunicator nccl)
        {
            nccl.WaitForDevice();
        }
        wait();
    }

    /// <summary>Records on every rank (for its failure message) the checkpoint rank 0 wrote at <paramref name="step"/>.</summary>
    public void Checkpointed(long step)
    {
        if (_launch?.RunRoot is { } root) _launch.LastCheckpoint = new CheckpointStore(Path.Combine(root, "checkpoints"), 1).PathFor(step);
    }

    public void Dispose()
    {
        if (_ownsTensors) Tensors.Dispose();
        _stopFlag?.Dispose();
    }
}
