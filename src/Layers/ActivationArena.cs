// The activation arena: every output, saved tensor and activation gradient of a model for one batch size
// is reserved here while the model is planned, then backed by ONE allocation. Forward and Backward only
// take views of reserved slots, so a training step allocates nothing. Slots are laid out one after the
// other without reuse: a layer's output is kept for its backward anyway, and giving each gradient its own
// region keeps every buffer's lifetime trivially correct. Re-planning (another batch size) builds a new arena.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

/// <summary>A reserved region of an arena; <see cref="View"/> is valid once the arena is allocated.</summary>
public sealed class ArenaSlot<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ActivationArena<T> _arena;

    internal ArenaSlot(ActivationArena<T> arena, string name, long offset, Shape shape, Layout layout)
    {
        _arena = arena;
        Name = name;
        Offset = offset;
        Shape = shape;
        Layout = layout;
    }

    public string Name { get; }
    public long Offset { get; }
    /// <summary>The planned shape; axis 0 is the largest batch this slot serves.</summary>
    public Shape Shape { get; }
    public Layout Layout { get; }

    public Tensor<T> View => new(_arena.Storage, Offset, Shape, Layout);

    /// <summary>The first <paramref name="batch"/> rows (axis 0) without allocating, for batches smaller than planned.</summary>
    public Tensor<T> Batch(int batch)
    {
        if ((uint)batch > (uint)Shape[0]) throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} exceeds the planned {Shape[0]} of '{Name}'");
        return new Tensor<T>(_arena.Storage, Offset, Shapes.WithBatch(Shape, batch), Layout);
    }
}

public sealed class ActivationArena<T> : IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Slots start on multiples of this many elements (256 bytes in fp32) for aligned vector access.</summary>
    public const int Alignment = 64;

    private readonly IBackend<T> _backend;
    private readonly List<ArenaSlot<T>> _slots = [];
    private Storage<T>? _storage;
    private long _length;
    private int _disposed;

    public ActivationArena(IBackend<T> backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
    }

    public IReadOnlyList<ArenaSlot<T>> Slots => _slots;

    /// <summary>Elements reserved so far (alignment gaps included).</summary>
    public long Length => _length;

    public bool IsAllocated => _storage is not null;

    public ArenaSlot<T> Reserve(string name, Shape shape, Layout layout = Layout.RowMajor)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_storage is not null) throw new InvalidOperationException($"cannot reserve '{name}': the arena is already allocated");
        if (shape.Elements == 0) throw new ArgumentException($"slot '{name}' has no elements ({shape})", nameof(shape));
        long offset = (_length + Alignment - 1) / Alignment * Alignment;
        var slot = new ArenaSlot<T>(this, name, offset, shape, layout);
        _length = offset + shape.Elements;
        _slots.Add(slot);
        return slot;
    }

    /// <summary>The one allocation backing every slot.</summary>
    public void Allocate()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_storage is not null) throw new InvalidOperationException("the arena is already allocated");
        _storage = _backend.Allocate<T>(Math.Max(_length, 1));
    }

    internal Storage<T> Storage
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            return _storage ?? throw new InvalidOperationException("the activation arena is not allocated yet: plan the model first");
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _storage?.Dispose();
        _storage = null;
    }
}

/// <summary>Shape helpers that do not allocate (Shape.ToArray does).</summary>
public static class Shapes
{
    public static Shape WithBatch(Shape s, int batch) => s.Rank switch
    {
        1 => new Shape(batch),
        2 => new Shape(batch, s[1]),
        3 => new Shape(batch, s[1], s[2]),
        4 => new Shape(batch, s[1], s[2], s[3]),
        _ => throw new ArgumentException($"shape {s} has no batch axis"),
    };

    public static Tensor<T> WithBatch<T>(Tensor<T> t, int batch) where T : unmanaged =>
        new(t.Storage, t.Offset, WithBatch(t.Shape, batch), t.Layout);

    /// <summary>Checks that <paramref name="actual"/> equals <paramref name="planned"/> except for a batch (axis 0) no larger than planned.</summary>
    public static int CheckBatch(string layer, Shape actual, Shape planned)
    {
        bool ok = actual.Rank == planned.Rank && actual.Rank > 0 && actual[0] >= 1 && actual[0] <= planned[0];
        for (int i = 1; ok && i < actual.Rank; i++) ok = actual[i] == planned[i];
        return ok ? actual[0] : throw new ArgumentException($"{layer}: input {actual} does not match the planned {planned} (batch may be smaller, other axes must match)");
    }
}
