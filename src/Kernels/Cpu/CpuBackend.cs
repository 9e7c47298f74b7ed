// The CPU reference backend: the code that DEFINES what every op of IBackend<T> computes. This file
// holds the allocator, the element-wise ops and the argument checks shared by the other parts
// (CpuBackend.Dense/Conv/BatchNorm/Pool/SimClr/Optimizers.cs). Host tensors only; every op is
// synchronous. Accumulation rule: parameter gradients (dw, dgamma, dbeta, dbias) are ADDED to,
// activation gradients (dx, dz, dlogits) are OVERWRITTEN.
using System.Numerics;
using System.Runtime.Intrinsics;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T> : IBackend<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public BackendInfo Info { get; } = new(DeviceKind.Cpu, $"cpu-{DTypes.Of<T>().ToString().ToLowerInvariant()}",
        $"CPU reference backend ({typeof(T).Name}, {Environment.ProcessorCount} threads, {(Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "scalar")})");

    // ---- memory ------------------------------------------------------------------------------

    public Storage<U> Allocate<U>(long length) where U : unmanaged => new HostStorage<U>(length);

    public void Upload<U>(Tensor<U> dst, ReadOnlySpan<U> src) where U : unmanaged
    {
        if (src.Length != dst.Length) throw new ArgumentException($"Upload: source has {src.Length} elements but {dst} holds {dst.Length}", nameof(src));
        src.CopyTo(HostSpan(dst, nameof(dst)));
    }

    public void Download<U>(Span<U> dst, Tensor<U> src) where U : unmanaged
    {
        if (dst.Length != src.Length) throw new ArgumentException($"Download: destination has {dst.Length} elements but {src} holds {src.Length}", nameof(dst));
        HostSpan(src, nameof(src)).CopyTo(dst);
    }

    public void Synchronize() { }

    public void Dispose() { }

    // ---- element-wise ------------------------------------------------------------------------

    public void Fill(Tensor<T> x, double value) => HostSpan(x, nameof(x)).Fill(T.CreateTruncating(value));

    public void Copy(Tensor<T> dst, Tensor<T> src)
    {
        SameLength(dst, src, nameof(src), nameof(Copy));
        src.Span.CopyTo(dst.Span);
    }

    public void Scale(Tensor<T> x, double alpha)
    {
        var s = HostSpan(x, nameof(x));
        TP.Multiply(s, T.CreateTruncating(alpha), s);
    }

    public void Axpy(Tensor<T> y, double alpha, Tensor<T> x)
    {
        SameLength(y, x, nameof(x), nameof(Axpy));
        var ys = y.Span;
        TP.MultiplyAdd(x.Span, T.CreateTruncating(alpha), ys, ys);
    }

    public void Add(Tensor<T> y, Tensor<T> a, Tensor<T> b)
    {
        SameLength(y, a, nameof(a), nameof(Add));
        SameLength(y, b, nameof(b), nameof(Add));
        TP.Add(a.Span, b.Span, y.Span);
    }

    public void ReluForward(Tensor<T> y, Tensor<T> x)
    {
        SameLength(y, x, nameof(x), nameof(ReluForward));
        TP.Max(x.Span, T.Zero, y.Span);
    }

    public void ReluBackward(Tensor<T> dx, Tensor<T> dy, Tensor<T> y)
    {
        SameLength(dx, dy, nameof(dy), nameof(ReluBackward));
        SameLength(dx, y, nameof(y), nameof(ReluBackward));
        ReluMask(dx.Span, dy.Span, y.Span);
    }

    private static void ReluMask(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<T> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            int w = Vector<T>.Count;
            for (; i <= dx.Length - w; i += w)
            {
                var mask = Vector.GreaterThan(new Vector<T>(y[i..]), Vector<T>.Zero);
                Vector.ConditionalSelect(mask, new Vector<T>(dy[i..]), Vector<T>.Zero).CopyTo(dx[i..]);
            }
        }
        for (; i < dx.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }

    // ---- shared argument checks --------------------------------------------------------------

    private static Span<U> HostSpan<U>(Tensor<U> t, string name) where U : unmanaged
    {
        if (t.IsEmpty) throw new ArgumentException($"{name} is an empty tensor", name);
        if (t.Storage.Device != DeviceKind.Cpu) throw new ArgumentException($"{name} lives on {t.Storage.Device}; the CPU backend needs host tensors", name);
        return t.Span;
    }

    /// <summary>The host span of <paramref name="t"/>, which must hold exactly <paramref name="expected"/> elements.</summary>
    private static Span<U> Need<U>(Tensor<U> t, long expected, string name, string op) where U : unmanaged
    {
        if (t.IsEmpty) throw new ArgumentException($"{op}: {name} is empty but {expected} elements are needed", name);
        if (t.Length != expected) throw new ArgumentException($"{op}: {name} has {t.Length} elements ({t.Shape}) but the shape needs {expected}", name);
        return HostSpan(t, name);
    }

    /// <summary>Like <see cref="Need{U}"/> for optional arguments: an empty tensor gives an empty span.</summary>
    private static Span<U> Optional<U>(Tensor<U> t, long expected, string name, string op) where U : unmanaged =>
        t.IsEmpty ? Span<U>.Empty : Need(t, expected, name, op);

    private static void SameLength(Tensor<T> first, Tensor<T> other, string name, string op)
    {
        HostSpan(first, "the first argument");
        Need(other, first.Length, name, op);
    }

    private static void Positive(int value, string name, string op)
    {
        if (value <= 0) throw new ArgumentException($"{op}: {name} must be positive, got {value}", name);
    }

    private static T Cast(double v) => T.CreateTruncating(v);
    private static double Wide(T v) => double.CreateTruncating(v);
}
