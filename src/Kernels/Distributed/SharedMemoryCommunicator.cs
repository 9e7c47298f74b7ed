// Ranks as threads of one process, over host tensors: the in-process data-parallel tests run on it, and it is a
// complete communicator for data parallelism inside one process (SharedMemoryGroup.Run starts the ranks).
// A collective is two rendezvous of all ranks. At the first, every rank publishes its tensor; then each rank reads
// the others' tensors directly (an all-reduce sums rank 0, 1, … in that order into private scratch, so every rank
// gets the same bits); at the second, everyone has finished reading, so the tensors may change again, and the
// all-reduce writes its result. A rendezvous waits at most Timeout: then, or when a rank has failed or left (its
// communicator disposed), or when the ranks disagree about the collective, the group breaks and every waiting
// and later collective throws one CommunicatorException saying which rank and what.
using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace SimClr.Kernels.Distributed;

/// <summary>The shared state of an in-process group of ranks.</summary>
public sealed class SharedMemoryGroup
{
    private readonly object _gate = new();
    private readonly Arrival?[] _arrivals;
    private readonly bool[] _joined, _left;
    private Arrival[] _completed = [];
    private int _arrivedCount;
    private long _generation;
    private string? _broken;

    public SharedMemoryGroup(int size, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        if (timeout <= TimeSpan.Zero && timeout != System.Threading.Timeout.InfiniteTimeSpan) throw new ArgumentOutOfRangeException(nameof(timeout), "the timeout must be positive");
        Size = size;
        Timeout = timeout;
        _arrivals = new Arrival?[size];
        _joined = new bool[size];
        _left = new bool[size];
    }

    public int Size { get; }
    public TimeSpan Timeout { get; }

    /// <summary>The communicator of <paramref name="rank"/> (once per rank).</summary>
    public SharedMemoryCommunicator Join(int rank)
    {
        lock (_gate)
        {
            if ((uint)rank >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is not in a group of {Size}");
            if (_joined[rank]) throw new InvalidOperationException($"rank {rank} has already joined the group");
            _joined[rank] = true;
        }
        return new SharedMemoryCommunicator(this, rank);
    }

    /// <summary>Marks <paramref name="rank"/> as failed: every collective waiting now or later throws, naming it.</summary>
    public void Fail(int rank, Exception error)
    {
        lock (_gate)
        {
            _broken ??= $"rank {rank} failed: {error.Message}";
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Runs <paramref name="body"/> for every rank on its own thread and returns the results by rank. A rank
    /// that throws breaks the group (the others' collectives fail at once); the first failure is rethrown, naming its rank.</summary>
    public static TResult[] Run<TResult>(int size, TimeSpan timeout, Func<ICommunicator, TResult> body)
    {
        var group = new SharedMemoryGroup(size, timeout);
        var results = new TResult[size];
        var errors = new Exception?[size];
        var threads = new Thread[size];
        for (int r = 0; r < size; r++)
        {
            int rank = r;
            threads[r] = new Thread(() =>
            {
                using var comm = group.Join(rank);
                try { results[rank] = body(comm); }
                catch (Exception e)
                {
                    errors[rank] = e;
                    group.Fail(rank, e);
                }
            }) { IsBackground = true, Name = $"rank {rank}" };
            threads[r].Start();
        }
        foreach (var t in threads) t.Join();
        // The root cause is the rank whose failure broke the group, not the ones that then saw it.
        int first = Array.FindIndex(errors, e => e is not null and not CommunicatorException);
        if (first < 0) first = Array.FindIndex(errors, e => e is not null);
        if (first >= 0) throw new CommunicatorException($"rank {first} failed: {errors[first]!.Message}", errors[first]);
        return results;
    }

    internal void Leave(int rank)
    {
        lock (_gate)
        {
            _left[rank] = true;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>What one rank brings to a rendezvous: the operation, its element type and count, the root and its tensor.</summary>
    internal sealed record Arrival(Collective Collective, Type ElementType, long Count, int Root, object? Tensor);

    /// <summary>Waits until every rank has arrived with an agreeing <paramref name="arrival"/>; returns them all.</summary>
    internal Arrival[] Rendezvous(int rank, Arrival arrival)
    {
        lock (_gate)
        {
            ThrowIfBroken(rank);
            long generation = _generation;
            _arrivals[rank] = arrival;
            if (++_arrivedCount == Size)
            {
                var all = _arrivals.Select(a => a!).ToArray();
                var first = all[0];
                for (int r = 1; r < Size; r++)
                {
                    var a = all[r];
                    if (a.Collective != first.Collective || a.ElementType != first.ElementType || a.Count != first.Count || a.Root != first.Root)
                        Break($"the ranks disagree: rank 0 called {Describe(first)} but rank {r} called {Describe(a)}");
                }
                ThrowIfBroken(rank);
                // Kept until the next rendezvous completes, which needs every waiter to have come back first.
                _completed = all;
                Array.Clear(_arrivals);
                _arrivedCount = 0;
                _generation++;
                Monitor.PulseAll(_gate);
                return all;
            }
            var clock = Stopwatch.StartNew();
            while (_generation == generation)
            {
                ThrowIfBroken(rank);
                var missing = Enumerable.Range(0, Size).Where(r => _arrivals[r] is null).ToArray();
                if (missing.FirstOrDefault(r => _left[r], -1) is var gone and >= 0)
                    Break($"rank {gone} has left the group while rank {rank} waits in {arrival.Collective}");
                else if (Timeout != System.Threading.Timeout.InfiniteTimeSpan && clock.Elapsed >= Timeout)
                    Break($"rank {rank}: {arrival.Collective} did not complete within {Timeout.TotalSeconds:G4} s: rank(s) {string.Join(", ", missing)} never reached it");
                else
                    Monitor.Wait(_gate, Timeout == System.Threading.Timeout.InfiniteTimeSpan ? 100 : (int)Math.Clamp((Timeout - clock.Elapsed).TotalMilliseconds + 1, 1, 100));
            }
            return _completed;
        }
    }

    private static string Describe(Arrival a) => a.Collective == Collective.Barrier ? "Barrier" : $"{a.Collective} of {a.Count} {a.ElementType.Name}" + (a.Root >= 0 ? $" from root {a.Root}" : "");

    private void Break(string reason)
    {
        _broken ??= reason;
        Monitor.PulseAll(_gate);
    }

    private void ThrowIfBroken(int rank)
    {
        if (_broken is { } reason) throw new CommunicatorException($"rank {rank}: the group is broken: {reason}");
    }
}

/// <summary>One rank of a <see cref="SharedMemoryGroup"/>; its tensors must be host tensors.</summary>
public sealed class SharedMemoryCommunicator : ICommunicator
{
    private readonly SharedMemoryGroup _group;
    private int _disposed;

    internal SharedMemoryCommunicator(SharedMemoryGroup group, int rank)
    {
        _group = group;
        Rank = rank;
    }

    public CommunicatorKind Kind => CommunicatorKind.SharedMemory;
    public int Rank { get; }
    public int Size => _group.Size;
    public TimeSpan Timeout => _group.Timeout;
    public string Description => $"shared memory (rank {Rank} of {Size}, threads of one process)";

    public void AllReduceSum<T>(Tensor<T> buffer) where T : unmanaged
    {
        Collectives.RequireSupported<T>(Collective.AllReduceSum);
        var mine = Host(buffer, nameof(buffer));
        var all = _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.AllReduceSum, typeof(T), buffer.Length, -1, buffer));
        var scratch = ArrayPool<T>.Shared.Rent(mine.Length);
        try
        {
            var sum = scratch.AsSpan(0, mine.Length);
            ((Tensor<T>)all[0].Tensor!).Span.CopyTo(sum);
            for (int r = 1; r < all.Length; r++) Add(sum, ((Tensor<T>)all[r].Tensor!).Span);
            _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.AllReduceSum, typeof(T), buffer.Length, -1, null));
            sum.CopyTo(mine);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(scratch);
        }
    }

    public void AllGather<T>(Tensor<T> gathered, Tensor<T> contribution) where T : unmanaged
    {
        Collectives.RequireGather(gathered, contribution, Size);
        var target = Host(gathered, nameof(gathered));
        Host(contribution, nameof(contribution));
        int n = checked((int)contribution.Length);
        var all = _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.AllGather, typeof(T), n, -1, contribution));
        for (int r = 0; r < all.Length; r++)
        {
            if (r == Rank && Collectives.IsInPlace(gathered, contribution, Rank)) continue;
            ((Tensor<T>)all[r].Tensor!).Span.CopyTo(target.Slice(r * n, n));
        }
        _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.AllGather, typeof(T), n, -1, null));
    }

    public void Broadcast<T>(Tensor<T> buffer, int root) where T : unmanaged
    {
        Collectives.RequireSupported<T>(Collective.Broadcast);
        Collectives.RequireRoot(root, Size);
        var mine = Host(buffer, nameof(buffer));
        var all = _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.Broadcast, typeof(T), buffer.Length, root, buffer));
        if (Rank != root) ((Tensor<T>)all[root].Tensor!).Span.CopyTo(mine);
        _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.Broadcast, typeof(T), buffer.Length, root, null));
    }

    public void Barrier() => _group.Rendezvous(Rank, new SharedMemoryGroup.Arrival(Collective.Barrier, typeof(byte), 0, -1, null));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _group.Leave(Rank);
    }

    private Span<T> Host<T>(Tensor<T> t, string name) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (t.IsEmpty) throw new ArgumentException($"{name} is empty", name);
        if (t.Storage.Device != DeviceKind.Cpu) throw new ArgumentException($"{name} lives on {t.Storage.Device}: the shared-memory communicator needs host tensors", name);
        return t.Span;
    }

    /// <summary>sum += x for the supported element types.</summary>
    private static void Add<T>(Span<T> sum, ReadOnlySpan<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) TensorPrimitives.Add(MemoryMarshal.Cast<T, float>(sum), MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(sum));
        else if (typeof(T) == typeof(double)) TensorPrimitives.Add(MemoryMarshal.Cast<T, double>(sum), MemoryMarshal.Cast<T, double>(x), MemoryMarshal.Cast<T, double>(sum));
        else if (typeof(T) == typeof(int)) TensorPrimitives.Add(MemoryMarshal.Cast<T, int>(sum), MemoryMarshal.Cast<T, int>(x), MemoryMarshal.Cast<T, int>(sum));
        else if (typeof(T) == typeof(long)) TensorPrimitives.Add(MemoryMarshal.Cast<T, long>(sum), MemoryMarshal.Cast<T, long>(x), MemoryMarshal.Cast<T, long>(sum));
        else TensorPrimitives.Add(MemoryMarshal.Cast<T, byte>(sum), MemoryMarshal.Cast<T, byte>(x), MemoryMarshal.Cast<T, byte>(sum));
    }
}
