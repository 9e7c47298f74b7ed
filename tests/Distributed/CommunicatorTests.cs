// The communicator contract on the in-process implementations: the shared-memory group (ranks as threads) gives
// the sums, gathers and broadcasts of the contract with the same bits on every rank; it never hangs: a rank that
// does not arrive fails the others within the timeout naming it, a failed or departed rank fails them at once, and
// ranks that call different collectives are told so. The single-process communicator is the identity, and the
// watchdog fires once for an operation armed longer than its timeout (and never for one that finishes).
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Kernels.Distributed;

namespace SimClr.Tests.Distributed;

public class CommunicatorTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A host tensor holding <paramref name="values"/> (MpiCommunicatorTests' ranks use it too).</summary>
    internal static Tensor<T> Host<T>(params T[] values) where T : unmanaged
    {
        var t = new HostStorage<T>(values.Length).AsTensor();
        values.CopyTo(t.Span);
        return t;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void SharedMemoryCollectivesFollowTheContract(int size)
    {
        var results = SharedMemoryGroup.Run(size, Generous, comm =>
        {
            int r = comm.Rank;
            var rng = new Random(r + 7);
            var f = Host(Enumerable.Range(0, 257).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
            var expected = new float[257];
            for (int k = 0; k < size; k++)
            {
                var other = new Random(k + 7);
                for (int i = 0; i < 257; i++) expected[i] += (float)(other.NextDouble() - 0.5);
            }
            comm.AllReduceSum(f);
            var l = Host((long)r << 33, -r); comm.AllReduceSum(l);
            var gathered = new HostStorage<int>(3 * size).AsTensor();
            comm.AllGather(gathered, Host(r, r * r, -r));
            var inPlace = new HostStorage<double>(2 * size).AsTensor();
            inPlace.Span[2 * r] = r + 0.25;
            inPlace.Span[2 * r + 1] = -r;
            comm.AllGather(inPlace, inPlace.Slice(2 * r, new Shape(2)));
            var b = Host((byte)r, (byte)(r + 1));
            comm.Broadcast(b, root: size - 1);
            comm.Barrier();
            return (F: f.Span.ToArray(), Expected: expected, L: l.Span.ToArray(), G: gathered.Span.ToArray(), P: inPlace.Span.ToArray(), B: b.Span.ToArray());
        });
        long sumOfShifts = Enumerable.Range(0, size).Sum(r => (long)r << 33);
        for (int r = 0; r < size; r++)
        {
            var x = results[r];
            Assert.Equal(results[0].F, x.F); // the same bits everywhere
            for (int i = 0; i < 257; i++) Assert.Equal(x.Expected[i], x.F[i], 1e-6);
            Assert.Equal([sumOfShifts, -Enumerable.Range(0, size).Sum()], x.L);
            Assert.Equal(Enumerable.Range(0, size).SelectMany(k => new[] { k, k * k, -k }).ToArray(), x.G);
            Assert.Equal(Enumerable.Range(0, size).SelectMany(k => new[] { k + 0.25, -k }).ToArray(), x.P);
            Assert.Equal([(byte)(size - 1), (byte)size], x.B);
        }
    }

    [Fact]
    public void ARankThatNeverArrivesFailsTheOthersWithinTheTimeoutNamingIt()
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<CommunicatorException>(() => SharedMemoryGroup.Run(3, TimeSpan.FromMilliseconds(400), comm =>
        {
            if (comm.Rank == 2) { Thread.Sleep(3000); return 0; }
            comm.AllReduceSum(Host(1f));
            return 1;
        }));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Contains("AllReduceSum did not complete within 0.4 s: rank(s) 2 never reached it", e.Message);
    }

    [Fact]
    public void AFailingRankFailsTheOthersAtOnceNamingIt()
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<CommunicatorException>(() => SharedMemoryGroup.Run(2, Generous, comm =>
        {
            if (comm.Rank == 1) throw new InvalidOperationException("disk full");
            comm.Barrier();
            return 0;
        }));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the surviving rank waited for the timeout");
        Assert.Equal("rank 1 failed: disk full", e.Message);
    }

    [Fact]
    public void ARankThatLeavesFailsTheOthersAtOnce()
    {
        var group = new SharedMemoryGroup(2, Generous);
        var zero = group.Join(0);
        group.Join(1).Dispose();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<CommunicatorException>(() => zero.Barrier());
        Assert.Contains("rank 1 has left the group", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void RanksThatDisagreeAreToldHow()
    {
        var e = Assert.Throws<CommunicatorException>(() => SharedMemoryGroup.Run(2, Generous, comm =>
        {
            if (comm.Rank == 0) comm.AllReduceSum(Host(1f, 2f));
            else comm.AllReduceSum(Host(1f, 2f, 3f));
            return 0;
        }));
        Assert.Contains("rank 0 called AllReduceSum of 2 Single but rank 1 called AllReduceSum of 3 Single", e.Message);
    }

    [Fact]
    public void SingleProcessIsTheIdentity()
    {
        using var comm = new SingleProcessCommunicator();
        var x = Host(1.5f, -2f);
        comm.AllReduceSum(x);
        comm.Broadcast(x, 0);
        comm.Barrier();
        Assert.Equal([1.5f, -2f], x.Span.ToArray());
        var gathered = new HostStorage<float>(2).AsTensor();
        comm.AllGather(gathered, x);
        Assert.Equal([1.5f, -2f], gathered.Span.ToArray());
        Assert.Throws<ArgumentException>(() => comm.AllGather(new HostStorage<float>(3).AsTensor(), x));
        Assert.Throws<ArgumentOutOfRangeException>(() => comm.Broadcast(x, 1));
    }

    [Fact]
    public void WatchdogFiresOnceForAnOperationArmedTooLong()
    {
        var fired = new List<string>();
        using (var dog = new CollectiveWatchdog(3, TimeSpan.FromMilliseconds(200), m => { lock (fired) fired.Add(m); }))
        {
            dog.Hint = () => "the last checkpoint is c.safetensors";
            using (dog.Arm(Collective.AllGather, 12, "Single")) Thread.Sleep(50);
            Thread.Sleep(400);
            lock (fired) Assert.Empty(fired);
            using (dog.Arm(Collective.AllReduceSum, 1000, "Single")) Thread.Sleep(800);
        }
        Assert.Single(fired);
        Assert.StartsWith("rank 3: AllReduceSum of 1000 Single elements did not complete within 0.2 s", fired[0]);
        Assert.EndsWith("the last checkpoint is c.safetensors", fired[0]);
    }
}
