// The CPU's ceilings, measured rather than looked up: peak FP32 throughput from a loop of independent
// fused multiply-adds on the widest vectors the JIT accelerates, run on every core, and memory
// bandwidth from STREAM-like passes (read, copy, y += a·x) over buffers several times larger than the
// last-level cache, counting the bytes each pass must move. Both take the best of many short tries: a
// roofline is what the machine can do, and on a shared machine short tries find the quiet moments.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace SimClr.Benchmarks;

public static class CpuRoofline
{
    private const int Accumulators = 12;

    public static Roofline Measure(SizeSet sizes)
    {
        int threads = Environment.ProcessorCount;
        long iterations = 2_000_000;
        int tries = sizes == SizeSet.Smoke ? 5 : 40;
        double best = 0;
        var (width, kind) = VectorKind();
        for (int t = 0; t < tries; t++)
        {
            var results = new float[threads];
            double seconds = OnEveryCore(threads, i => results[i] = FmaLoop(iterations));
            GC.KeepAlive(results);
            double flops = (double)threads * iterations * Accumulators * width * 2;
            best = Math.Max(best, flops / seconds / 1e9);
        }

        long floats = sizes == SizeSet.Smoke ? 16L << 20 : 32L << 20;
        int passes = sizes == SizeSet.Smoke ? 3 : 30;
        var (bandwidth, pass) = Bandwidth(floats, passes, threads);
        return new Roofline(best, bandwidth,
            $"{threads} threads × {Accumulators} independent {kind} FMA chains, best of {tries}",
            $"best of read / copy / y += a·x over {floats * 4 >> 20} MiB buffers ({pass}), {passes} tries each");
    }

    /// <summary>Runs work(i) on <paramref name="threads"/> dedicated threads released together by a barrier
    /// and returns the wall time from the first start to the last finish, stamped by the workers themselves
    /// (the main thread may be descheduled on a loaded machine). Dedicated threads, not the thread pool: a
    /// pool that has not yet injected a second worker runs both items on one core and halves the "peak".</summary>
    private static double OnEveryCore(int threads, Action<int> work)
    {
        using var barrier = new Barrier(threads);
        var starts = new long[threads];
        var ends = new long[threads];
        var workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            int index = i;
            workers[i] = new Thread(() =>
            {
                barrier.SignalAndWait();
                starts[index] = Stopwatch.GetTimestamp();
                work(index);
                ends[index] = Stopwatch.GetTimestamp();
            }) { IsBackground = true };
            workers[i].Start();
        }
        foreach (var w in workers) w.Join();
        return (ends.Max() - starts.Min()) / (double)Stopwatch.Frequency;
    }

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

    private enum Pass { Read, Copy, Axpy }

    /// <summary>The best rate of the three passes, each counted by the bytes it must move
    /// (read: 1 array, copy: 2, y += a·x: 3), and which pass reached it.</summary>
    private static (double GBps, string Pass) Bandwidth(long floats, int tries, int threads)
    {
        var x = GC.AllocateUninitializedArray<float>((int)floats);
        var y = GC.AllocateUninitializedArray<float>((int)floats);
        // Touch both buffers first so page faults are not timed.
        Array.Fill(x, 1f);
        Array.Fill(y, 0f);
        int chunk = (int)(floats / threads);
        double best = 0;
        var bestPass = Pass.Read;
        var sums = new float[threads];
        foreach (var pass in Enum.GetValues<Pass>())
        {
            for (int t = 0; t < tries; t++)
            {
                double seconds = OnEveryCore(threads, i =>
                {
                    int from = i * chunk, count = i == threads - 1 ? (int)floats - from : chunk;
                    var xs = x.AsSpan(from, count);
                    var ys = y.AsSpan(from, count);
                    switch (pass)
                    {
                        case Pass.Read: sums[i] = TP.Sum(xs); break;
                        case Pass.Copy: xs.CopyTo(ys); break;
                        default: TP.MultiplyAdd(xs, 1e-7f, ys, ys); break;
                    }
                });
                int arrays = pass switch { Pass.Read => 1, Pass.Copy => 2, _ => 3 };
                double rate = (double)arrays * floats * sizeof(float) / seconds / 1e9;
                if (rate > best) (best, bestPass) = (rate, pass);
            }
        }
        GC.KeepAlive(sums);
        return (best, bestPass switch { Pass.Read => "read", Pass.Copy => "copy", _ => "y += a·x" });
    }
}
