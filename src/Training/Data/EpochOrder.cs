// The order in which an epoch visits the training set: a permutation that is a pure function of
// (seed, epoch), so a resumed run continues with exactly the batches it would have seen. The stream is
// keyed by the seed mixed with a domain constant, so it never coincides with other streams of the same
// seed (weight initialization, augmentation).
using SimClr.Kernels;

namespace SimClr.Training.Data;

public static class EpochOrder
{
    private const ulong Domain = 0x45504F43485F4F52; // "EPOCH_OR"

    /// <summary>A permutation of 0..count-1 for <paramref name="epoch"/>.</summary>
    public static int[] Permutation(ulong seed, int epoch, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        return new PhiloxStream(seed ^ Domain, (uint)epoch).Permutation(count);
    }

    /// <summary>Steps per epoch when incomplete final batches are dropped (SimCLR's fixed-shape step).</summary>
    public static int StepsPerEpoch(int count, int batchSize) => count / batchSize;

    /// <summary>The sample indices of <paramref name="step"/> within an epoch's permutation.</summary>
    public static ReadOnlySpan<int> Batch(int[] permutation, int step, int batchSize) =>
        permutation.AsSpan(step * batchSize, batchSize);
}
