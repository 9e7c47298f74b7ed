// The activation arena: every output, saved tensor and activation gradient of a model for one batch size
// is reserved here while the model is planned, then backed by ONE allocation. Forward and Backward only
// take views of reserved slots, so a training step allocates nothing. Re-planning (another batch size)
// builds a new arena.
// Two lifetimes. Step slots (outputs and saved tensors) live for the whole step and each get their own
// region. Gradient slots live only inside the backward pass, so they share memory: planning hands out ticks
// in forward order (one per leaf layer) and Backward runs leaves in exactly the reverse tick order, so a
// gradient written by the leaf at tick w and last read at tick r ≤ w is live over [r, w]. Gradient slots
// whose tick intervals do not overlap may take the same addresses; Allocate packs them greedily.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public enum SlotLifetime
{
    /// <summary>Written in Forward and kept through Backward (outputs, saved statistics).</summary>
    Step,
    /// <summary>An activation gradient, live only between its writer's and its last reader's backward ticks.</summary>
    Backward,
}

/// <summary>A reserved region of an arena; <see cref="View"/> is valid once the arena is allocated.</summary>
public sealed class ArenaSlot<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ActivationArena<T> _arena;

    internal ArenaSlot(ActivationArena<T> arena, string name, Shape shape, Layout layout, SlotLifetime lifetime, int tick)
    {
        _arena = arena;
        Name = name;
        Shape = shape;
        Layout = layout;
        Lifetime = lifetime;
        WriteTick = LastReadTick = tick;
    }

    public string Name { get; }
    /// <summary>Element offset in the arena; assigned by <see cref="ActivationArena{T}.Allocate"/>.</summary>
    public long Offset { get; internal set; } = -1;
    /// <summary>The planned shape; axis 0 is the largest batch this slot serves.</summary>
    public Shape Shape { get; }
    public Layout Layout { get; }
    public SlotLifetime Lifetime { get; }
    /// <summary>For gradient slots: the tick of the leaf whose Backward writes it.</summary>
    public int WriteTick { get; }
    /// <summary>For gradient slots: the lowest tick at which it is still read.</summary>
    public int LastReadTick { get; private set; }

    /// <summary>Declares that the leaf at <paramref name="tick"/> (or a later step of Backward) still reads this gradient.</summary>
    public void ExtendTo(int tick)
    {
        if (Lifetime != SlotLifetime.Backward) return;
        if (Offset >= 0) throw new InvalidOperationException($"'{Name}': the arena is already packed");
        LastReadTick = Math.Min(LastReadTick, tick);
    }

    internal bool OverlapsInTime(ArenaSlot<T> other) =>
        Lifetime == SlotLifetime.Step || other.Lifetime == SlotLifetime.Step ||
        (LastReadTick <= other.WriteTick && other.LastReadTick <= WriteTick);

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
    private bool _packed;
    private int _disposed;

    public ActivationArena(IBackend<T> backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
    }

    public IReadOnlyList<ArenaSlot<T>> Slots => _slots;

    /// <summary>Elements of the one allocation (known after <see cref="Pack"/> or <see cref="Allocate"/>).</summary>
    public long Length => _length;

    /// <summary>What the slots would take without sharing gradient memory (for reports and tests).</summary>
    public long UnsharedLength => _slots.Sum(s => Align(s.Shape.Elements));

    public bool IsAllocated => _storage is not null;

    /// <summary>The last tick handed out; leaf layers take the next one when planned.</summary>
    public int Tick { get; private set; }

    public int NextTick() => ++Tick;

    /// <summary>A slot live for the whole step.</summary>
    public ArenaSlot<T> Reserve(string name, Shape shape, Layout layout = Layout.RowMajor) =>
        Add(new ArenaSlot<T>(this, name, shape, layout, SlotLifetime.Step, 0));

    /// <summary>A gradient slot written at <paramref name="writeTick"/>; readers below that tick call ExtendTo.</summary>
    public ArenaSlot<T> ReserveGradient(string name, Shape shape, Layout layout, int writeTick)
    {
        if (writeTick <= 0 || writeTick > Tick) throw new ArgumentOutOfRangeException(nameof(writeTick), $"'{name}': tick {writeTick} was not handed out (last is {Tick})");
        return Add(new ArenaSlot<T>(this, name, shape, layout, SlotLifetime.Backward, writeTick));
    }

    private ArenaSlot<T> Add(ArenaSlot<T> slot)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_packed) throw new InvalidOperationException($"cannot reserve '{slot.Name}': the arena is already packed or allocated");
        if (slot.Shape.Elements == 0) throw new ArgumentException($"slot '{slot.Name}' has no elements ({slot.Shape})");
        _slots.Add(slot);
        return slot;
    }

    private static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    /// <summary>Assigns the offsets and makes the one allocation.</summary>
    public void Allocate()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_storage is not null) throw new InvalidOperationException("the arena is already allocated");
        _storage = _backend.Allocate<T>(Math.Max(Pack(), 1));
    }

    /// <summary>Assigns every offset without allocating and returns the arena's length in elements: step slots
    /// one after the other, then gradient slots packed by lifetime, largest first, each at the lowest offset
    /// clear of every slot live at the same time. Reserving after packing is refused.</summary>
    public long Pack()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_packed) return _length;
        _packed = true;
        long cursor = 0;
        foreach (var slot in _slots.Where(s => s.Lifetime == SlotLifetime.Step))
        {
            slot.Offset = cursor;
            cursor += Align(slot.Shape.Elements);
        }
        long gradientBase = cursor, gradientEnd = cursor;
        var placed = new List<ArenaSlot<T>>();
        foreach (var slot in _slots.Where(s => s.Lifetime == SlotLifetime.Backward).OrderByDescending(s => s.Shape.Elements).ThenBy(s => s.WriteTick))
        {
            var live = placed.Where(p => p.OverlapsInTime(slot)).OrderBy(p => p.Offset).ToList();
            long offset = gradientBase, size = Align(slot.Shape.Elements);
            foreach (var p in live)
            {
                if (offset + size <= p.Offset) break;
                offset = Math.Max(offset, p.Offset + Align(p.Shape.Elements));
            }
            slot.Offset = offset;
            gradientEnd = Math.Max(gradientEnd, offset + size);
            placed.Add(slot);
        }
        _length = gradientEnd;
        return _length;
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

    /// <summary>Checks that <paramref name="actual"/> equals <paramref name="planned"/> except for a batch (axis 0) no larger than planned.</summary>
    public static int CheckBatch(string layer, Shape actual, Shape planned)
    {
        bool ok = actual.Rank == planned.Rank && actual.Rank > 0 && actual[0] >= 1 && actual[0] <= planned[0];
        for (int i = 1; ok && i < actual.Rank; i++) ok = actual[i] == planned[i];
        return ok ? actual[0] : throw new ArgumentException($"{layer}: input {actual} does not match the planned {planned} (batch may be smaller, other axes must match)");
    }
}
