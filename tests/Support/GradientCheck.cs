// Finite-difference gradient checking for the CPU reference backend in double precision, shared by
// every test that checks a backward pass (ops here, layers elsewhere). The pattern: draw inputs, make
// the scalar loss L = Σ r·y with a fixed random projection r (so dy = r), run the backward once for
// the analytic gradient, and compare with central differences of L. The error metric is GLOBAL:
// max|a − n| / max(max|a|, max|n|, 1e-12) over the whole gradient tensor, so tiny entries are judged
// on the scale of the largest one rather than on their own (where cancellation makes them noisy).
using SimClr.Kernels;
using SimClr.Kernels.Cpu;

namespace SimClr.Tests.Support;

public static class GradientCheck
{
    /// <summary>The double-precision reference backend (stateless; shared by all tests).</summary>
    public static CpuBackend<double> Backend { get; } = new();

    /// <summary>A fresh host tensor holding a copy of <paramref name="values"/> (rank 1 unless a shape is given).</summary>
    public static Tensor<double> Tensor(double[] values, Shape? shape = null)
    {
        var storage = new HostStorage<double>(values.Length);
        values.CopyTo(storage.HostSpan(0, values.Length));
        return storage.AsTensor(shape ?? new Shape(values.Length));
    }

    /// <summary>A fresh zero-filled tensor of <paramref name="length"/> elements.</summary>
    public static Tensor<double> Zeros(long length) => new HostStorage<double>(length).AsTensor();

    /// <summary>A fresh tensor filled with <paramref name="value"/> (e.g. NaN, to prove an op overwrites).</summary>
    public static Tensor<double> Filled(long length, double value)
    {
        var t = Zeros(length);
        t.Span.Fill(value);
        return t;
    }

    /// <summary>A host int32 tensor (labels).</summary>
    public static Tensor<int> Ints(int[] values)
    {
        var storage = new HostStorage<int>(values.Length);
        values.CopyTo(storage.HostSpan(0, values.Length));
        return storage.AsTensor();
    }

    /// <summary>A copy of a tensor's elements.</summary>
    public static double[] Read(Tensor<double> t) => t.Span.ToArray();

    /// <summary>Deterministic uniform values in [lo, hi).</summary>
    public static double[] Random(long length, int seed, double lo = -1, double hi = 1)
    {
        var rng = new Random(seed);
        var v = new double[length];
        for (long i = 0; i < length; i++) v[i] = lo + (hi - lo) * rng.NextDouble();
        return v;
    }

    /// <summary>Σ r·y: the scalar that turns an output tensor into a loss whose gradient w.r.t. y is r.</summary>
    public static double Dot(Tensor<double> y, double[] r)
    {
        var s = y.Span;
        if (s.Length != r.Length) throw new ArgumentException($"projection has {r.Length} entries, tensor {s.Length}");
        double sum = 0;
        for (int i = 0; i < s.Length; i++) sum += s[i] * r[i];
        return sum;
    }

    /// <summary>Central differences (L(x+h) − L(x−h)) / 2h of <paramref name="loss"/> with respect to every element of
    /// <paramref name="input"/>, which is perturbed in place and restored. <paramref name="loss"/> must recompute
    /// everything it depends on from the tensors' current contents. It runs once more at the end on the restored
    /// input, so whatever it writes (outputs, saved statistics) matches the unperturbed input afterwards.</summary>
    public static double[] Numeric(Func<double> loss, Tensor<double> input, double h = 1e-5)
    {
        var x = input.Span;
        var grad = new double[x.Length];
        for (int i = 0; i < grad.Length; i++) grad[i] = NumericAt(loss, input, i, h);
        loss();
        return grad;
    }

    /// <summary>The central difference at one element of <paramref name="input"/>, which is restored afterwards
    /// (the saved outputs of <paramref name="loss"/> are then those of the last perturbation).</summary>
    public static double NumericAt(Func<double> loss, Tensor<double> input, int index, double h = 1e-5)
    {
        var x = input.Span;
        double saved = x[index];
        x[index] = saved + h;
        double plus = loss();
        x[index] = saved - h;
        double minus = loss();
        x[index] = saved;
        return (plus - minus) / (2 * h);
    }

    /// <summary>max|a − n| / max(max|a|, max|n|, 1e-12).</summary>
    public static double RelativeError(ReadOnlySpan<double> analytic, ReadOnlySpan<double> numeric)
    {
        if (analytic.Length != numeric.Length) throw new ArgumentException($"lengths differ: {analytic.Length} vs {numeric.Length}");
        double diff = 0, scale = 1e-12;
        for (int i = 0; i < analytic.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(analytic[i] - numeric[i]));
            scale = Math.Max(scale, Math.Max(Math.Abs(analytic[i]), Math.Abs(numeric[i])));
        }
        return diff / scale;
    }

    /// <summary>Fails with the worst element when <see cref="RelativeError"/> exceeds <paramref name="tolerance"/>.</summary>
    public static void AssertClose(ReadOnlySpan<double> analytic, ReadOnlySpan<double> numeric, string what, double tolerance = 1e-6)
    {
        double err = RelativeError(analytic, numeric);
        if (err <= tolerance) return;
        int worst = 0;
        for (int i = 1; i < analytic.Length; i++)
            if (Math.Abs(analytic[i] - numeric[i]) > Math.Abs(analytic[worst] - numeric[worst])) worst = i;
        Assert.Fail($"{what}: relative error {err:E3} > {tolerance:E1}; worst at [{worst}]: analytic {analytic[worst]:R}, expected {numeric[worst]:R}");
    }

    /// <summary>Up to <paramref name="count"/> random coordinates of <paramref name="analytic"/> plus its largest |entry|
    /// (so the global relative error is judged on the tensor's own scale), in ascending order.</summary>
    public static int[] SampleIndices(double[] analytic, int count, Random rng)
    {
        int largest = 0;
        for (int i = 1; i < analytic.Length; i++) if (Math.Abs(analytic[i]) > Math.Abs(analytic[largest])) largest = i;
        var picked = new SortedSet<int> { largest };
        while (picked.Count < Math.Min(count + 1, analytic.Length)) picked.Add(rng.Next(analytic.Length));
        return [.. picked];
    }

    /// <summary>Checks a whole network's gradient <paramref name="analytic"/> w.r.t. <paramref name="input"/> at
    /// <paramref name="indices"/> only. Tiny networks with BN over few values are steeply curved: the truncation error
    /// of h = 1e-5 reaches 1e-3 on the stem's weights, while h = 1e-7 keeps it below 1e-8 and the rounding error
    /// (≈1e-15/h) well under the 1e-6 tolerance.</summary>
    public static void CheckSampled(Func<double> loss, Tensor<double> input, double[] analytic, int[] indices, string what)
    {
        const double h = 1e-7;
        var a = indices.Select(i => analytic[i]).ToArray();
        var n = indices.Select(i => NumericAt(loss, input, i, h)).ToArray();
        AssertClose(a, n, what);
    }

    /// <summary>Checks the analytic gradient <paramref name="analytic"/> of <paramref name="loss"/> w.r.t. <paramref name="input"/>.</summary>
    public static void Check(Func<double> loss, Tensor<double> input, ReadOnlySpan<double> analytic, string what, double tolerance = 1e-6, double h = 1e-5) =>
        AssertClose(analytic, Numeric(loss, input, h), what, tolerance);
}
