// Entry point of the benchmark program: picks a suite (cpu, kernels, step), runs it under the shared
// timing discipline, prints a markdown table and writes the JSON that benchmarks/compare.py reads.
using SimClr.Benchmarks;

return BenchmarkProgram.Run(args);
