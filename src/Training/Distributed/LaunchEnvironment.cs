// Where this process stands in a job, read from the environment its launcher set: Open MPI's mpirun
// (OMPI_COMM_WORLD_SIZE/RANK/LOCAL_RANK), PMIx (PMIX_RANK, with srun --mpi=pmix), Slurm's srun (SLURM_NTASKS,
// SLURM_PROCID, SLURM_LOCALID) and MPICH-style PMI (PMI_SIZE, PMI_RANK). No launcher means one process. MPI itself
// then says the rank and size authoritatively; the local rank (which GPU) comes only from here.
using System.Globalization;

namespace SimClr.Training.Distributed;

public sealed record LaunchEnvironment(int Size, int Rank, int LocalRank, string Launcher)
{
    public static LaunchEnvironment SingleProcess { get; } = new(1, 0, 0, "none");

    /// <summary>Reads the launcher's variables from <paramref name="get"/> (the process environment by default).</summary>
    public static LaunchEnvironment Detect(Func<string, string?>? get = null)
    {
        get ??= Environment.GetEnvironmentVariable;
        int? Int(string name) => int.TryParse(get(name), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : null;
        int local = Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? Int("SLURM_LOCALID") ?? Int("MPI_LOCALRANKID") ?? Int("LOCAL_RANK") ?? 0;
        if (Int("OMPI_COMM_WORLD_SIZE") is { } ompiSize)
            return new(ompiSize, Int("OMPI_COMM_WORLD_RANK") ?? 0, local, "mpirun");
        if (Int("SLURM_NTASKS") is { } tasks && Int("SLURM_PROCID") is { } proc && (get("PMIX_RANK") is not null || get("SLURM_STEP_ID") is not null))
            return new(tasks, proc, local, "srun");
        if (Int("PMI_SIZE") is { } pmiSize)
            return new(pmiSize, Int("PMI_RANK") ?? 0, local, "pmi");
        return SingleProcess;
    }
}
