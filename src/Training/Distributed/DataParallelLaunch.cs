// One process's place in a data-parallel pretraining job, from start to exit. Without a launcher it is the group
// of one (no MPI is touched). Under mpirun or srun it initializes Open MPI; rank 0 then runs the pretrain command
// as a single process would (it alone writes the run directory, logs, plots and checkpoints) and announces the
// resolved configuration, the start position and the run directory to the other ranks, which run
// PretrainWorker: they load their own copy of the data, build the same model and train silently.
//
// Ending: when the command returns, every rank calls MPI_Finalize and exits with its status. When anything throws
// on a rank of a multi-rank job, an exception filter (which runs BEFORE any finally block or Dispose, so nothing can
// block first on collectives that will never complete) prints "error: rank R: …" with the last checkpoint and calls
// MPI_Abort, which ends every rank. A collective that does not complete within SIMCLR_COLLECTIVE_TIMEOUT seconds
// (default 600) ends the job the same way, from the watchdog.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Distributed;
using SimClr.Kernels.Distributed.Native;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Runs;

namespace SimClr.Training.Distributed;

/// <summary>What rank 0 tells the other ranks before training: everything they need to train the same run (the run
/// directory it sends too is kept as DataParallelLaunch.RunRoot, for the failure message).</summary>
public sealed record LaunchAnnouncement(RunConfig Config, TrainingPosition Start, double BestMetric);

public sealed class DataParallelLaunch : IDisposable
{
    /// <summary>Seconds a collective may wait for the other ranks.</summary>
    public const string TimeoutVariable = "SIMCLR_COLLECTIVE_TIMEOUT";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    private readonly MpiCommunicator? _mpi;

    private DataParallelLaunch(ICommunicator host, MpiCommunicator? mpi, LaunchEnvironment environment)
    {
        Host = host;
        _mpi = mpi;
        Environment = environment;
    }

    /// <summary>The host communicator: MPI in a job (configuration, NCCL's id, stop agreement, CPU tensors), else single.</summary>
    public ICommunicator Host { get; }
    public LaunchEnvironment Environment { get; }
    public int Rank => Host.Rank;
    public int Size => Host.Size;
    /// <summary>Rank 0 writes the run directory, logs, plots and checkpoints; the others never touch it.</summary>
    public bool IsWriter => Rank == 0;

    /// <summary>The newest checkpoint rank 0 has written (every rank knows it, for the failure message).</summary>
    public string? LastCheckpoint { get; set; }

    /// <summary>The run directory (rank 0's, announced to the others), once known.</summary>
    public string? RunRoot { get; private set; }

    /// <summary>Runs <paramref name="body"/> as this process's part of the job and returns its exit status.</summary>
    public static int Run(CliContext ctx, Func<DataParallelLaunch, int> body)
    {
        var environment = LaunchEnvironment.Detect();
        if (environment.Size <= 1)
        {
            using var single = new DataParallelLaunch(new SingleProcessCommunicator(), null, environment);
            return body(single);
        }
        var launch = Start(environment);
        try
        {
            int status = body(launch);
            launch.Dispose();
            return status;
        }
        catch (Exception e) when (launch.AbortJob(e, ctx))
        {
            throw; // AbortJob never returns
        }
    }

    private static DataParallelLaunch Start(LaunchEnvironment environment)
    {
        var timeout = CollectiveTimeout();
        MpiCommunicator mpi;
        try
        {
            mpi = MpiCommunicator.Initialize(timeout);
        }
        catch (MpiNotAvailableException e)
        {
            throw new UserError($"launched by {environment.Launcher} with {environment.Size} ranks, but {e.Message}", ExitCode.BadInput);
        }
        if (mpi.Size != environment.Size)
        {
            mpi.Dispose();
            throw new UserError($"launched by {environment.Launcher} with {environment.Size} ranks, but MPI sees {mpi.Size}" +
                (environment.Launcher == "srun" ? " (start it with srun --mpi=pmix)" : ""), ExitCode.BadInput);
        }
        var launch = new DataParallelLaunch(mpi, mpi, environment);
        mpi.Watchdog.Hint = launch.CheckpointHint;
        return launch;
    }

    private static TimeSpan CollectiveTimeout()
    {
        var text = System.Environment.GetEnvironmentVariable(TimeoutVariable);
        if (string.IsNullOrWhiteSpace(text)) return DefaultTimeout;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds > 0 && double.IsFinite(seconds)
            ? TimeSpan.FromSeconds(seconds)
            : throw new UserError($"{TimeoutVariable}={text}: must be a positive number of seconds", ExitCode.BadOption);
    }

    private string CheckpointHint() =>
        LastCheckpoint is { } path ? $"Resume with --resume {path}." : RunRoot is { } root ? $"No checkpoint of {root} had been written yet." : "";

    /// <summary>Prints the failure of this rank and ends every rank of the job (MPI_Abort).</summary>
    private bool AbortJob(Exception e, CliContext ctx)
    {
        string hint = CheckpointHint() is { Length: > 0 } h ? " " + h : "";
        int code;
        if (e is UserError user)
        {
            ctx.Error.WriteLine($"error: rank {Rank}: {user.Message}{hint}");
            code = (int)user.Code;
        }
        else
        {
            ctx.Error.WriteLine($"error: rank {Rank} of {Size} failed; ending the job.{hint}");
            ctx.Error.WriteLine(e.ToString());
            code = MpiCommunicator.FailedJobExitCode;
        }
        ctx.Error.Flush();
        _mpi!.Abort(code);
        return true;
    }

    // ---- the job's shape -------------------------------------------------------------------------

    /// <summary>The pairs each rank trains on: --batch-size is the global batch and must split evenly.</summary>
    public int LocalPairs(int batchSize) =>
        batchSize % Size == 0 && batchSize / Size >= 1
            ? batchSize / Size
            : throw UserError.Option("--batch-size", $"{batchSize} does not split evenly over the {Size} ranks of this job (it is the global batch)");

    /// <summary>The device of this rank: with several ranks, cuda (or auto) means the local rank's GPU among those this
    /// process sees (local rank modulo the visible count, so srun --gpus-per-task=1, where each sees one, works too).</summary>
    public DeviceRequest Device(DeviceRequest requested)
    {
        if (Size == 1 || requested.Choice == DeviceChoice.Cpu || requested.Ordinal != 0) return requested;
        int visible = CudaInfo.Probe().Devices.Count;
        return visible == 0 ? requested : requested with { Ordinal = Environment.LocalRank % visible };
    }

    /// <summary>The configuration this job trains: its ranks recorded, and a note when resuming a checkpoint that was
    /// written at another world size (which works: see README, "More than one device").</summary>
    public RunConfig Adopt(RunConfig config, RunConfig? checkpointConfig, TextWriter log)
    {
        if (checkpointConfig is { } stored && stored.Ranks != Size)
        {
            string effect = config.SyncBn != SyncBnMode.Off
                ? "batch norm statistics stay those of the whole global batch, so the run continues the same trajectory up to float reduction order (not bit for bit)"
                : $"with --sync-bn off each rank's batch norm now sees {config.BatchSize / Size} instead of {config.BatchSize / stored.Ranks} samples, which changes the trajectory";
            log.WriteLine($"note: resuming a {stored.Ranks}-rank run on {Size} rank(s): the global batch, data order and augmentations are unchanged; {effect}");
        }
        return config with { Ranks = Size };
    }

    // ---- rank 0 → the others ---------------------------------------------------------------------

    /// <summary>Rank 0: tells the other ranks what to train (returns at once in a single process).</summary>
    public void Announce(RunConfig config, TrainingPosition start, double bestMetric, RunDirectory run)
    {
        RunRoot = run.Root;
        if (Size == 1) return;
        var message = new JsonObject
        {
            ["config"] = config.ToJson(),
            ["epoch"] = start.Epoch,
            ["step"] = start.Step,
            ["epoch_step"] = start.EpochStep,
            ["best_metric"] = bestMetric.ToString("R", CultureInfo.InvariantCulture),
            ["run_root"] = run.Root,
        };
        var bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
        BroadcastBytes(bytes);
    }

    /// <summary>Ranks other than 0: waits for rank 0's announcement.</summary>
    public LaunchAnnouncement ReceiveAnnouncement()
    {
        var text = Encoding.UTF8.GetString(BroadcastBytes(null));
        var o = JsonNode.Parse(text)!.AsObject();
        var config = RunConfig.FromJson(o["config"]!.GetValue<string>(), "rank 0's announcement");
        var start = new TrainingPosition(o["epoch"]!.GetValue<int>(), o["step"]!.GetValue<long>(), o["epoch_step"]!.GetValue<int>());
        RunRoot = o["run_root"]!.GetValue<string>();
        return new LaunchAnnouncement(config, start, double.Parse(o["best_metric"]!.GetValue<string>(), CultureInfo.InvariantCulture));
    }

    /// <summary>Broadcasts a length, then the bytes, from rank 0; the others pass null and get rank 0's bytes.</summary>
    private byte[] BroadcastBytes(byte[]? bytes)
    {
        using var length = new HostStorage<long>(1);
        if (bytes is not null) length.AsTensor().Span[0] = bytes.Length;
        Host.Broadcast(length.AsTensor(), root: 0);
        int n = checked((int)length.AsTensor().Span[0]);
        using var payload = new HostStorage<byte>(Math.Max(n, 1));
        if (bytes is not null) bytes.CopyTo(payload.AsTensor().Span);
        Host.Broadcast(payload.AsTensor(), root: 0);
        return payload.AsTensor().Span[..n].ToArray();
    }

    /// <summary>Makes this rank's model part of the job: the tensor communicator (MPI itself for CPU tensors, NCCL
    /// over MPI for a GPU), the model distributed, and rank 0's whole state (parameters, BN statistics and counters,
    /// momentum) copied to every rank, so that every rank starts from the same bits.</summary>
    public DataParallel Join(IBackend<float> backend, SimClrModel<float> model, Storage<float> momentum, SyncBnMode syncBn, TextWriter log)
    {
        if (Size == 1)
        {
            // --sync-bn on with one process: the data-parallel code path over a group of one (see SyncBnMode).
            if (syncBn == SyncBnMode.On)
            {
                model.Distribute(new SingleProcessCommunicator(backend), BatchNormSync.Synchronized);
                log.WriteLine("data parallel: one rank, through the synchronized code path (--sync-bn on)");
            }
            return new DataParallel(this, Host, ownsTensors: false);
        }
        var sync = syncBn == SyncBnMode.Off ? BatchNormSync.Local : BatchNormSync.Synchronized;
        RequireSameDeviceKind(backend);
        ICommunicator tensors = backend is CudaBackend cuda ? NcclCommunicator.Create(cuda, Host, _mpi!.Watchdog) : Host;
        var parallel = new DataParallel(this, tensors, ownsTensors: !ReferenceEquals(tensors, Host));
        model.Distribute(tensors, sync);
        var store = model.Parameters;
        tensors.Broadcast(store.Parameters, root: 0);
        tensors.Broadcast(store.Buffers, root: 0);
        tensors.Broadcast(momentum.AsTensor(), root: 0);
        var counters = store.Entries.Where(e => e.Kind == StoreTensorKind.Counter).ToList();
        using var values = new HostStorage<long>(Math.Max(counters.Count, 1));
        for (int i = 0; i < counters.Count; i++) values.AsTensor().Span[i] = store.GetCounter(counters[i].Name);
        Host.Broadcast(values.AsTensor(), root: 0);
        for (int i = 0; i < counters.Count; i++) store.SetCounter(counters[i].Name, values.AsTensor().Span[i]);
        if (IsWriter)
            log.WriteLine($"data parallel: {Size} ranks ({Environment.Launcher}), {Host.Description}; tensors over {tensors.Kind}; " +
                $"{sync.ToString().ToLowerInvariant()} batch norm; {model.Config.BatchSize} pairs per rank");
        return parallel;
    }

    /// <summary>Every rank must run the same kind of backend (all CPU over MPI, or all CUDA over NCCL).</summary>
    private void RequireSameDeviceKind(IBackend<float> backend)
    {
        using var kinds = new HostStorage<int>(Size);
        var all = kinds.AsTensor();
        all.Span[Rank] = (int)backend.Info.Device;
        Host.AllGather(all, all.Slice(Rank, new Shape(1)));
        for (int r = 0; r < Size; r++)
            if (all.Span[r] != all.Span[0])
                throw UserError.Option("--device", $"rank {r} runs on {(DeviceKind)all.Span[r]} but rank 0 on {(DeviceKind)all.Span[0]}: every rank needs the same kind of device");
    }

    public void Dispose() => _mpi?.Dispose();
}
