// Tensors are non-owning views: a storage, an element offset, a shape, a dtype and a layout.
// Storage owns memory (host or device); a Tensor<T> is a cheap readonly struct that layers keep
// as named views into flat buffers (parameters, gradients, activation arenas).
using System.Runtime.CompilerServices;

namespace SimClr.Kernels;

/// <summary>Element type of a tensor, derived from the CLR type.</summary>
public enum DType { Float32, Float64, Int32, Int64, UInt8, Struct }

/// <summary>Memory order of a 4-d activation tensor. Rank-1/2 tensors are <see cref="RowMajor"/>.</summary>
public enum Layout { RowMajor, NCHW, NHWC }

/// <summary>Where a storage lives.</summary>
public enum DeviceKind { Cpu, Cuda }

public static class DTypes
{
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32 :
        typeof(T) == typeof(double) ? DType.Float64 :
        typeof(T) == typeof(int) ? DType.Int32 :
        typeof(T) == typeof(long) ? DType.Int64 :
        typeof(T) == typeof(byte) ? DType.UInt8 : DType.Struct;
}

/// <summary>A shape of rank 0..4, stored inline so views never allocate.</summary>
public readonly struct Shape : IEquatable<Shape>
{
    private readonly int _d0, _d1, _d2, _d3;
    public int Rank { get; }

    public Shape(int d0) { Rank = 1; _d0 = Check(d0); _d1 = _d2 = _d3 = 1; }
    public Shape(int d0, int d1) { Rank = 2; _d0 = Check(d0); _d1 = Check(d1); _d2 = _d3 = 1; }
    public Shape(int d0, int d1, int d2) { Rank = 3; _d0 = Check(d0); _d1 = Check(d1); _d2 = Check(d2); _d3 = 1; }
    public Shape(int d0, int d1, int d2, int d3) { Rank = 4; _d0 = Check(d0); _d1 = Check(d1); _d2 = Check(d2); _d3 = Check(d3); }

    public static Shape Scalar => default;

    public int this[int axis] => axis switch
    {
        _ when (uint)axis >= (uint)Rank => throw new ArgumentOutOfRangeException(nameof(axis), $"axis {axis} out of range for rank {Rank}"),
        0 => _d0, 1 => _d1, 2 => _d2, _ => _d3,
    };

    /// <summary>Number of elements; a rank-0 shape holds one.</summary>
    public long Elements => Rank == 0 ? 1 : (long)_d0 * _d1 * _d2 * _d3;

    private static int Check(int d) => d >= 0 ? d : throw new ArgumentOutOfRangeException(nameof(d), $"negative dimension {d}");

    public bool Equals(Shape other) => Rank == other.Rank && _d0 == other._d0 && _d1 == other._d1 && _d2 == other._d2 && _d3 == other._d3;
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode() => HashCode.Combine(Rank, _d0, _d1, _d2, _d3);
    public static bool operator ==(Shape a, Shape b) => a.Equals(b);
    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    public int[] ToArray()
    {
        var r = new int[Rank];
        for (int i = 0; i < Rank; i++) r[i] = this[i];
        return r;
    }

    public static Shape FromArray(ReadOnlySpan<int> dims) => dims.Length switch
    {
        0 => Scalar,
        1 => new Shape(dims[0]),
        2 => new Shape(dims[0], dims[1]),
        3 => new Shape(dims[0], dims[1], dims[2]),
        4 => new Shape(dims[0], dims[1], dims[2], dims[3]),
        _ => throw new ArgumentException($"rank {dims.Length} is not supported (at most 4)", nameof(dims)),
    };

    public override string ToString() => "[" + string.Join(", ", ToArray()) + "]";
}

/// <summary>Owned memory of one element type on one device. Dispose is once-only and thread-safe.</summary>
public abstract class Storage<T> : IDisposable where T : unmanaged
{
    private int _disposed;

    protected Storage(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
    }

    public long Length { get; }
    public abstract DeviceKind Device { get; }
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;
    public long Bytes => Length * Unsafe.SizeOf<T>();

    /// <summary>A host span over [offset, offset+length); throws for device memory.</summary>
    public abstract Span<T> HostSpan(long offset, long length);

    /// <summary>The raw address of element 0 (device pointer for CUDA, pinned host address for CPU).</summary>
    public abstract nint Address { get; }

    public Tensor<T> AsTensor(Shape shape, Layout layout = Layout.RowMajor) => new(this, 0, shape, layout);
    public Tensor<T> AsTensor() => new(this, 0, new Shape(checked((int)Length)));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

/// <summary>Host memory, pinned so that its address is stable for native code.</summary>
public sealed class HostStorage<T> : Storage<T> where T : unmanaged
{
    private T[]? _data;

    public HostStorage(long length) : base(length)
    {
        if (length > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(length), $"host storage of {length} elements exceeds the array limit");
        _data = GC.AllocateArray<T>((int)length, pinned: true);
    }

    public override DeviceKind Device => DeviceKind.Cpu;

    public override unsafe nint Address => (nint)Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(Data));

    private T[] Data => _data ?? throw new ObjectDisposedException(nameof(HostStorage<T>));

    public override Span<T> HostSpan(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"span [{offset}, {offset + length}) outside storage of {Length}");
        return Data.AsSpan((int)offset, (int)length);
    }

    protected override void Release() => _data = null;
}

/// <summary>A non-owning view: storage + element offset + shape + layout.</summary>
public readonly struct Tensor<T> where T : unmanaged
{
    public Tensor(Storage<T> storage, long offset, Shape shape, Layout layout = Layout.RowMajor)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (offset < 0 || offset + shape.Elements > storage.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"view [{offset}, {offset + shape.Elements}) outside storage of {storage.Length}");
        Storage = storage;
        Offset = offset;
        Shape = shape;
        Layout = layout;
    }

    public Storage<T> Storage { get; }
    public long Offset { get; }
    public Shape Shape { get; }
    public Layout Layout { get; }
    public DType DType => DTypes.Of<T>();
    public long Length => Storage is null ? 0 : Shape.Elements;

    /// <summary>True for <c>default(Tensor&lt;T&gt;)</c>: used for optional arguments such as a missing bias.</summary>
    public bool IsEmpty => Storage is null;

    /// <summary>Host elements of this view; throws for device tensors.</summary>
    public Span<T> Span => Storage.HostSpan(Offset, Length);

    /// <summary>Address of the first element of this view.</summary>
    public nint Address => Storage.Address + (nint)(Offset * Unsafe.SizeOf<T>());

    public Tensor<T> Reshape(Shape shape, Layout? layout = null)
    {
        if (shape.Elements != Length) throw new ArgumentException($"cannot reshape {Shape} ({Length} elements) to {shape}", nameof(shape));
        return new Tensor<T>(Storage, Offset, shape, layout ?? Layout);
    }

    /// <summary>A contiguous sub-view of <paramref name="shape"/>.Elements elements starting at element <paramref name="offset"/>.</summary>
    public Tensor<T> Slice(long offset, Shape shape, Layout layout = Layout.RowMajor)
    {
        if (offset < 0 || offset + shape.Elements > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"slice [{offset}, {offset + shape.Elements}) outside view of {Length}");
        return new Tensor<T>(Storage, Offset + offset, shape, layout);
    }

    /// <summary>Rows [start, start+count) of the leading axis.</summary>
    public Tensor<T> Rows(int start, int count)
    {
        int n = Shape[0];
        if (start < 0 || count < 0 || start + count > n) throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside {n}");
        long row = Length / Math.Max(n, 1);
        var dims = Shape.ToArray();
        dims[0] = count;
        return new Tensor<T>(Storage, Offset + start * row, Shape.FromArray(dims), Layout);
    }

    public override string ToString() => $"Tensor<{typeof(T).Name}>{Shape} {Layout} @{Offset} on {Storage?.Device}";
}
