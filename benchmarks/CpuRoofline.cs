// The CPU's ceilings, measured rather than looked up: peak FP32 throughput from a loop of independent
// fused multiply-adds on the widest vectors the JIT accelerates, run on every core, and memory
// bandwidth from a parallel copy of buffers several times larger than the last-level cache. Both take
// the best of several tries, since a roofline is what the machine can do, not what it did once.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SimClr.Benchmarks;

public static class CpuRoofline
{
    private const int Accumulators = 12;

    public static Roofline Measure(SizeSet sizes)
    {
        int threads = Environment.ProcessorCount;
        long iterations = sizes == SizeSet.Smoke ? 2_000_000 : 20_000_000;
        int tries = sizes == SizeSet.Smoke ? 3 : 7;
        double best = 0;
        var (width, kind) = VectorKind();
        for (int t = 0; t < tries; t++)
        {
            long start = Stopwatch.GetTimestamp();
            float sink = 0;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                float r = FmaLoop(iterations);
                lock (Lock) sink += r;
            });
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            GC.KeepAlive(sink);
            double flops = (double)threads * iterations * Accumulators * width * 2;
            best = Math.Max(best, flops / seconds / 1e9);
        }

        long floats = sizes == SizeSet.Smoke ? 16L << 20 : 64L << 20;
        double bandwidth = CopyBandwidth(floats, tries, threads);
        return new Roofline(best, bandwidth,
            $"{threads} threads × {Accumulators} independent {kind} FMA chains, best of {tries}",
            $"parallel copy of {floats * 4 >> 20} MiB (read + write bytes), best of {tries}");
    }

    private static readonly object Lock = new();

    private static (int Width, string Kind) VectorKind() =>
        Avx512F.IsSupported ? (16, "512-bit") : Fma.IsSupported ? (8, "256-bit") : (4, "128-bit (mul+add)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FmaLoop(long iterations)
    {
        if (Avx512F.IsSupported) return Fma512(iterations);
        if (Fma.IsSupported) return Fma256(iterations);
        return MulAdd128(iterations);
    }

    private static float Fma512(long n)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a, x4 = x3 + a, x5 = x4 + a,
            x6 = x5 + a, x7 = x6 + a, x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < n; i++)
        {
            x0 = Avx512F.FusedMultiplyAdd(x0, m, a); x1 = Avx512F.FusedMultiplyAdd(x1, m, a);
            x2 = Avx512F.FusedMultiplyAdd(x2, m, a); x3 = Avx512F.FusedMultiplyAdd(x3, m, a);
            x4 = Avx512F.FusedMultiplyAdd(x4, m, a); x5 = Avx512F.FusedMultiplyAdd(x5, m, a);
            x6 = Avx512F.FusedMultiplyAdd(x6, m, a); x7 = Avx512F.FusedMultiplyAdd(x7, m, a);
            x8 = Avx512F.FusedMultiplyAdd(x8, m, a); x9 = Avx512F.FusedMultiplyAdd(x9, m, a);
            x10 = Avx512F.FusedMultiplyAdd(x10, m, a); x11 = Avx512F.FusedMultiplyAdd(x11, m, a);
        }
        return Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    private static float Fma256(long n)
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a, x4 = x3 + a, x5 = x4 + a,
            x6 = x5 + a, x7 = x6 + a, x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < n; i++)
        {
            x0 = Fma.MultiplyAdd(x0, m, a); x1 = Fma.MultiplyAdd(x1, m, a);
            x2 = Fma.MultiplyAdd(x2, m, a); x3 = Fma.MultiplyAdd(x3, m, a);
            x4 = Fma.MultiplyAdd(x4, m, a); x5 = Fma.MultiplyAdd(x5, m, a);
            x6 = Fma.MultiplyAdd(x6, m, a); x7 = Fma.MultiplyAdd(x7, m, a);
            x8 = Fma.MultiplyAdd(x8, m, a); x9 = Fma.MultiplyAdd(x9, m, a);
            x10 = Fma.MultiplyAdd(x10, m, a); x11 = Fma.MultiplyAdd(x11, m, a);
        }
        return Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    private static float MulAdd128(long n)
    {
        var m = Vector128.Create(0.999999f);
        var a = Vector128.Create(1e-7f);
        Vector128<float> x0 = Vector128.Create(1f), x1 = x0 + a, x2 = x1 + a, x3 = x2 + a, x4 = x3 + a, x5 = x4 + a,
            x6 = x5 + a, x7 = x6 + a, x8 = x7 + a, x9 = x8 + a, x10 = x9 + a, x11 = x10 + a;
        for (long i = 0; i < n; i++)
        {
            x0 = x0 * m + a; x1 = x1 * m + a; x2 = x2 * m + a; x3 = x3 * m + a; x4 = x4 * m + a; x5 = x5 * m + a;
            x6 = x6 * m + a; x7 = x7 * m + a; x8 = x8 * m + a; x9 = x9 * m + a; x10 = x10 * m + a; x11 = x11 * m + a;
        }
        return Vector128.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
    }

    private static double CopyBandwidth(long floats, int tries, int threads)
    {
        var src = GC.AllocateUninitializedArray<float>((int)floats);
        var dst = GC.AllocateUninitializedArray<float>((int)floats);
        // Touch both buffers first so page faults are not timed.
        Array.Fill(src, 1f);
        Array.Fill(dst, 0f);
        int chunk = (int)(floats / threads);
        double best = 0;
        for (int t = 0; t < tries; t++)
        {
            long start = Stopwatch.GetTimestamp();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
            {
                int from = i * chunk, count = i == threads - 1 ? (int)floats - from : chunk;
                src.AsSpan(from, count).CopyTo(dst.AsSpan(from, count));
            });
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            best = Math.Max(best, 2.0 * floats * sizeof(float) / seconds / 1e9);
        }
        return best;
    }
}
