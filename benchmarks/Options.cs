// Command-line options of the benchmark program. Parsed by hand: there are six of them and the
// program is also run from the GPU bundle, where a plain, dependency-free parser is easiest to trust.
namespace SimClr.Benchmarks;

public enum SuiteKind { Cpu, Kernels, Step, Collectives }

public enum SizeSet { Full, Smoke }

public sealed record BenchOptions(SuiteKind Suite, SizeSet Sizes, string JsonPath, int Samples, int WarmupRuns, string? Filter,
    SimClr.Kernels.Cuda.ConvolutionAlgorithms Convolutions = SimClr.Kernels.Cuda.ConvolutionAlgorithms.Reproducible)
{
    public const int MinimumSamples = 20;

    public const string Usage = """
        usage: SimClr.Benchmarks <suite> [options]
          suites:
            cpu       GEMM, convolution, augment, NT-Xent, LARS and a full step on the CPU backend
            kernels   the hand-written CUDA kernels (NT-Xent, cosine similarity, augment, LARS, element-wise)
            step      one full SimCLR training step on the GPU (ResNet-18 CIFAR and ResNet-50 ImageNet)
            device    whether CUDA is usable here and why not (exit 0 usable, 2 no device, 1 broken); --json PATH
            profile   where a CPU training step's time goes, op by op (--width W --batch B --steps N --json PATH)
            collectives  one data-parallel step's collectives on 2 CPU ranks (mpirun -np 2 …, else threads), and the scaling model
          options:
            --smoke          one tiny size per benchmark (the CI run)
            --json PATH      where the JSON goes (default benchmarks/results-<suite>.json)
            --samples N      timed samples per figure (at least 20; default 20)
            --warmup N       untimed warm-up runs before calibration (default 3)
            --filter TEXT    only the benchmarks whose key contains TEXT
            --conv-algorithms reproducible|fastest
                             how the GPU suites' backend picks cuDNN convolution algorithms (default
                             reproducible, as training does; fastest = cudnnFind timing, like PyTorch's
                             cudnn.benchmark)
        """;

    public static BenchOptions Parse(string[] args)
    {
        if (args.Length == 0) throw new UsageException("no suite given");
        var suite = args[0].ToLowerInvariant() switch
        {
            "cpu" => SuiteKind.Cpu,
            "kernels" => SuiteKind.Kernels,
            "step" => SuiteKind.Step,
            "collectives" => SuiteKind.Collectives,
            var other => throw new UsageException($"unknown suite '{other}'"),
        };
        var sizes = SizeSet.Full;
        string? json = null, filter = null;
        int samples = MinimumSamples, warmup = 3;
        var convolutions = SimClr.Kernels.Cuda.ConvolutionAlgorithms.Reproducible;
        for (int i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
            int Count(string name, int min)
            {
                string text = Value();
                if (!int.TryParse(text, out int n) || n < min) throw new UsageException($"{name} must be an integer ≥ {min}, got '{text}'");
                return n;
            }
            switch (args[i])
            {
                case "--smoke": sizes = SizeSet.Smoke; break;
                case "--json": json = Value(); break;
                case "--samples": samples = Count("--samples", MinimumSamples); break;
                case "--warmup": warmup = Count("--warmup", 1); break;
                case "--filter": filter = Value(); break;
                case "--conv-algorithms":
                    convolutions = Value() switch
                    {
                        "reproducible" => SimClr.Kernels.Cuda.ConvolutionAlgorithms.Reproducible,
                        "fastest" => SimClr.Kernels.Cuda.ConvolutionAlgorithms.Fastest,
                        var other => throw new UsageException($"--conv-algorithms must be reproducible or fastest, got '{other}'"),
                    };
                    break;
                default: throw new UsageException($"unknown option '{args[i]}'");
            }
        }
        json ??= Path.Combine(DefaultResultsFolder(), $"results-{args[0].ToLowerInvariant()}.json");
        return new BenchOptions(suite, sizes, json, samples, warmup, filter, convolutions);
    }

    public bool Selects(string key) => Filter is null || key.Contains(Filter, StringComparison.OrdinalIgnoreCase);

    /// <summary>benchmarks/ when run from the source tree (dotnet run), else the working directory (bundle).</summary>
    private static string DefaultResultsFolder()
    {
        string cwd = Directory.GetCurrentDirectory();
        if (File.Exists(Path.Combine(cwd, "benchmarks", "SimClr.Benchmarks.csproj"))) return Path.Combine(cwd, "benchmarks");
        return cwd;
    }
}

public sealed class UsageException(string message) : Exception(message);
