// The MPI communicator in real multi-process jobs. Each [Fact] runs twice over: started by the test runner, it
// starts `mpirun -np 2` on this test executable with itself as the only test; started on a rank of that job
// (OMPI_COMM_WORLD_SIZE is set), it is that rank's part. The outer run checks the job's outcome:
// - the collectives (all-reduce of every element type, all-gather in and out of place, broadcast from rank 1,
//   barrier) give the right values, and all-reduce gives the same bits on both ranks;
// - a rank that never reaches a collective makes the other rank's watchdog end the job within the timeout, with a
//   message naming the waiting rank and the collective, and exit code 4;
// - a rank that is killed (SIGKILL) ends the job at once (mpirun names it), long before the collective timeout.
using System.Diagnostics;
using SimClr.Kernels;
using SimClr.Kernels.Distributed;
using static SimClr.Tests.Distributed.CommunicatorTests;

namespace SimClr.Tests.Distributed;

public class MpiCommunicatorTests
{
    private const string Self = "SimClr.Tests.Distributed.MpiCommunicatorTests.";

    [Fact]
    public void CollectivesAgreeOverTwoProcesses()
    {
        if (MpiLauncher.UnderMpirun)
        {
            RankCollectives();
            return;
        }
        var result = MpiLauncher.RunTest(2, Self + nameof(CollectivesAgreeOverTwoProcesses), TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.ToString());
        // Each rank's runner ran the one test and passed it.
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(result.Output, @"Total: 1, Errors: 0, Failed: 0, Skipped: 0").Count);
    }

    [Fact]
    public void ACollectiveThatNeverCompletesEndsTheJobWithinTheTimeout()
    {
        if (MpiLauncher.UnderMpirun)
        {
            RankStalls();
            return;
        }
        var result = MpiLauncher.RunTest(2, Self + nameof(ACollectiveThatNeverCompletesEndsTheJobWithinTheTimeout), TimeSpan.FromMinutes(2));
        Assert.Equal(MpiCommunicator.FailedJobExitCode, result.ExitCode);
        Assert.Contains("rank 0: Barrier did not complete within 3 s", result.Output);
        Assert.Contains("the last checkpoint is nowhere", result.Output);
        Assert.True(result.Elapsed < TimeSpan.FromSeconds(25), result.ToString());
    }

    [Fact]
    public void AKilledRankEndsTheJobAtOnce()
    {
        if (MpiLauncher.UnderMpirun)
        {
            RankIsKilled();
            return;
        }
        var result = MpiLauncher.RunTest(2, Self + nameof(AKilledRankEndsTheJobAtOnce), TimeSpan.FromMinutes(2));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Matches(@"rank 1|\[\[\d+,\d+\],1\]", result.Output);
        // The survivor's collective timeout is 100 s: the job must end because mpirun saw the death, not by the timeout.
        Assert.True(result.Elapsed < TimeSpan.FromSeconds(60), result.ToString());
        Assert.DoesNotContain("did not complete within", result.Output);
    }

    private static void RankCollectives()
    {
        using var comm = MpiCommunicator.Initialize(TimeSpan.FromSeconds(60));
        Assert.Equal(2, comm.Size);
        int r = comm.Rank;

        var f = Host(1.5f + r, -2f * r, 1e-3f);
        comm.AllReduceSum(f);
        Assert.Equal([4f, -2f, 2e-3f], f.Span.ToArray());
        var d = Host(0.1 + r, 1e300 * (r == 0 ? 1 : -1));
        comm.AllReduceSum(d);
        Assert.Equal([0.1 + (0.1 + 1), 0.0], d.Span.ToArray());
        var i = Host(7 + r); comm.AllReduceSum(i); Assert.Equal(15, i.Span[0]);
        var l = Host((1L << 40) * (r + 1)); comm.AllReduceSum(l); Assert.Equal(3L << 40, l.Span[0]);
        var b = Host((byte)(3 + r)); comm.AllReduceSum(b); Assert.Equal((byte)7, b.Span[0]);

        // The same bits on both ranks: sum random floats, gather both results, compare.
        var rng = new Random(r + 1);
        var values = Host(Enumerable.Range(0, 1000).Select(_ => (float)rng.NextDouble()).ToArray());
        comm.AllReduceSum(values);
        var both = new HostStorage<float>(2000).AsTensor();
        comm.AllGather(both, values);
        Assert.True(both.Span[..1000].SequenceEqual(both.Span[1000..]), "all-reduce gave different bits on the two ranks");

        var gathered = new HostStorage<int>(6).AsTensor();
        comm.AllGather(gathered, Host(10 * r, 10 * r + 1, 10 * r + 2));
        Assert.Equal([0, 1, 2, 10, 11, 12], gathered.Span.ToArray());
        var inPlace = new HostStorage<double>(4).AsTensor();
        inPlace.Span[2 * r] = r + 0.5; inPlace.Span[2 * r + 1] = -r;
        comm.AllGather(inPlace, inPlace.Slice(2 * r, new Shape(2)));
        Assert.Equal([0.5, 0, 1.5, -1], inPlace.Span.ToArray());

        var broadcast = Host(r, r, r);
        comm.Broadcast(broadcast, root: 1);
        Assert.Equal([1, 1, 1], broadcast.Span.ToArray());
        comm.Barrier();
    }

    private static void RankStalls()
    {
        using var comm = MpiCommunicator.Initialize(TimeSpan.FromSeconds(3));
        comm.Watchdog.Hint = () => "the last checkpoint is nowhere";
        comm.Barrier();
        if (comm.Rank == 1) Thread.Sleep(TimeSpan.FromSeconds(60));
        else comm.Barrier();
        Assert.Fail($"rank {comm.Rank} should have been ended by rank 0's watchdog");
    }

    private static void RankIsKilled()
    {
        using var comm = MpiCommunicator.Initialize(TimeSpan.FromSeconds(100));
        comm.Barrier();
        if (comm.Rank == 1) Process.GetCurrentProcess().Kill();
        comm.AllReduceSum(Host(1f));
        Assert.Fail($"rank {comm.Rank} should have been ended when rank 1 died");
    }
}
