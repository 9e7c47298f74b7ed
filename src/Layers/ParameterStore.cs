// The parameter store owns every trainable parameter of a model in ONE flat buffer, the gradients in a
// second buffer of the same layout, and the non-trainable BN running statistics in a third. Layers
// register their tensors while the model is built (names follow torchvision's ResNet state_dict), then
// Allocate makes the three allocations, initializes from a seeded Philox stream on the host and uploads
// once. Optimizers see the parameters as one multi-tensor table of ParamSegments (uploaded once), and
// zeroing the gradients is a single Fill.
//
// num_batches_tracked: torchvision keeps it as an int64 buffer per BN layer. It does not change the math
// here (momentum is always set), so it is kept on the host as a long counter per BN layer, incremented by
// each training-mode BN forward, and enumerated as StoreTensorKind.Counter so checkpoints can write it as
// int64 and PyTorch's strict load_state_dict finds the key. A replayed CUDA graph does not run host code,
// so a trainer that captures the step sets the counters itself (SetCounter).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

/// <summary>What a named entry of the store is.</summary>
public enum StoreTensorKind
{
    /// <summary>Trainable, in the flat parameter buffer, with a gradient of the same layout.</summary>
    Parameter,
    /// <summary>Non-trainable state of element type T (BN running mean and variance).</summary>
    Buffer,
    /// <summary>A host-side int64 counter (BN num_batches_tracked), shape [] as in PyTorch.</summary>
    Counter,
}

public enum InitKind { Constant, KaimingNormalFanOut, Uniform }

/// <summary>How a tensor is initialized: a constant, N(0, std²) with std = √(2/fan_out), or U(−bound, bound).</summary>
public readonly record struct ParamInit(InitKind Kind, double Value)
{
    public static ParamInit Constant(double value) => new(InitKind.Constant, value);
    public static ParamInit Zeros => Constant(0);
    public static ParamInit Ones => Constant(1);
    /// <summary>torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu") for conv weights.</summary>
    public static ParamInit KaimingNormalFanOut(long fanOut) =>
        fanOut > 0 ? new(InitKind.KaimingNormalFanOut, Math.Sqrt(2.0 / fanOut)) : throw new ArgumentOutOfRangeException(nameof(fanOut));
    /// <summary>PyTorch's nn.Linear default for weight and bias: U(−1/√fan_in, 1/√fan_in).</summary>
    public static ParamInit UniformFanIn(long fanIn) =>
        fanIn > 0 ? new(InitKind.Uniform, 1.0 / Math.Sqrt(fanIn)) : throw new ArgumentOutOfRangeException(nameof(fanIn));
}

/// <summary>One named entry, for checkpoints and listings. Offset is in elements into the buffer of its kind
/// (the flat parameter buffer, the buffer storage, or the counter index).</summary>
public sealed record StoreEntry(string Name, Shape Shape, StoreTensorKind Kind, SegmentFlags Flags, long Offset, ParamInit Init)
{
    public long Elements => Shape.Elements;
}

/// <summary>A parameter's value and gradient views; valid once the store is allocated.</summary>
public sealed class ParameterSlot<T> where T : unmanaged
{
    private readonly ParameterStoreCore _owner;
    internal ParameterSlot(ParameterStoreCore owner, StoreEntry entry) { _owner = owner; Entry = entry; }

    public StoreEntry Entry { get; }
    public string Name => Entry.Name;
    public Shape Shape => Entry.Shape;
    public Tensor<T> Value { get => _owner.EnsureAllocated(field, Name); internal set; }
    public Tensor<T> Gradient { get => _owner.EnsureAllocated(field, Name); internal set; }
}

/// <summary>A non-trainable buffer's view; valid once the store is allocated.</summary>
public sealed class BufferSlot<T> where T : unmanaged
{
    private readonly ParameterStoreCore _owner;
    internal BufferSlot(ParameterStoreCore owner, StoreEntry entry) { _owner = owner; Entry = entry; }

    public StoreEntry Entry { get; }
    public string Name => Entry.Name;
    public Tensor<T> Value { get => _owner.EnsureAllocated(field, Name); internal set; }
}

/// <summary>The allocation state shared by the slots (non-generic so slots need not know T's store).</summary>
public abstract class ParameterStoreCore
{
    public bool IsAllocated { get; protected set; }

    internal Tensor<U> EnsureAllocated<U>(Tensor<U> view, string name) where U : unmanaged =>
        IsAllocated ? view : throw new InvalidOperationException($"'{name}' has no storage yet: call ParameterStore.Allocate after building the model");
}

public sealed class ParameterStore<T> : ParameterStoreCore, IDisposable where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Every tensor starts on a multiple of this many elements (256 bytes in fp32), so that vectorized
    /// kernels may assume aligned segments. The gaps are zero and belong to no segment.</summary>
    public const int Alignment = 64;

    private readonly List<StoreEntry> _entries = [];
    private readonly Dictionary<string, StoreEntry> _byName = new(StringComparer.Ordinal);
    private readonly List<ParameterSlot<T>> _params = [];
    private readonly List<BufferSlot<T>> _buffers = [];
    private long _paramLength, _bufferLength;
    private long[] _counters = [];
    private Storage<T>? _paramStorage, _gradStorage, _bufferStorage;
    private Storage<ParamSegment>? _segmentStorage;
    private ParamSegment[] _segments = [];
    private int _disposed;

    public ParameterStore(IBackend<T> backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        Backend = backend;
    }

    public IBackend<T> Backend { get; }

    /// <summary>Every entry in registration order: parameters, buffers and counters interleaved as the model
    /// registers them (conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var, bn1.num_batches_tracked, ...).</summary>
    public IReadOnlyList<StoreEntry> Entries => _entries;

    public IReadOnlyList<ParameterSlot<T>> ParameterSlots => _params;

    /// <summary>Number of trainable scalars (what torchvision's parameter count reports; alignment gaps excluded).</summary>
    public long ParameterCount { get; private set; }

    /// <summary>Number of buffer scalars (running means and variances; counters excluded).</summary>
    public long BufferCount { get; private set; }

    /// <summary>Length of the flat parameter (and gradient, and optimizer-state) buffer, alignment gaps included.</summary>
    public long FlatLength => _paramLength;

    public int SegmentCount => _params.Count;

    // ---- registration ----------------------------------------------------------------------------------

    public ParameterSlot<T> AddParameter(string name, Shape shape, ParamInit init, SegmentFlags flags = SegmentFlags.None)
    {
        var entry = Register(name, shape, StoreTensorKind.Parameter, flags, ref _paramLength, init);
        var slot = new ParameterSlot<T>(this, entry);
        _params.Add(slot);
        ParameterCount += shape.Elements;
        return slot;
    }

    public BufferSlot<T> AddBuffer(string name, Shape shape, double initialValue)
    {
        var entry = Register(name, shape, StoreTensorKind.Buffer, SegmentFlags.None, ref _bufferLength, ParamInit.Constant(initialValue));
        var slot = new BufferSlot<T>(this, entry);
        _buffers.Add(slot);
        BufferCount += shape.Elements;
        return slot;
    }

    /// <summary>Registers a host int64 counter; returns its index for <see cref="IncrementCounter"/>.</summary>
    public int AddCounter(string name)
    {
        long index = _counters.Length;
        Register(name, Shape.Scalar, StoreTensorKind.Counter, SegmentFlags.None, ref index, ParamInit.Zeros);
        Array.Resize(ref _counters, _counters.Length + 1);
        return _counters.Length - 1;
    }

    private StoreEntry Register(string name, Shape shape, StoreTensorKind kind, SegmentFlags flags, ref long cursor, ParamInit init)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (IsAllocated) throw new InvalidOperationException($"cannot register '{name}': the store is already allocated");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"a tensor named '{name}' is already registered", nameof(name));
        if (kind != StoreTensorKind.Counter && shape.Elements == 0) throw new ArgumentException($"'{name}' has no elements ({shape})", nameof(shape));
        long offset = cursor;
        if (kind != StoreTensorKind.Counter)
        {
            offset = (cursor + Alignment - 1) / Alignment * Alignment;
            cursor = offset + shape.Elements;
        }
        var entry = new StoreEntry(name, shape, kind, flags, offset, init);
        _entries.Add(entry);
        _byName.Add(name, entry);
        return entry;
    }

    // ---- allocation and initialization -----------------------------------------------------------------

    /// <summary>Makes the parameter, gradient and buffer allocations, uploads the segment table and
    /// initializes every tensor from <paramref name="seed"/>. Call once, after the model is built.</summary>
    public void Allocate(ulong seed)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (IsAllocated) throw new InvalidOperationException("the parameter store is already allocated");
        if (_params.Count == 0) throw new InvalidOperationException("the parameter store has no parameters");
        _paramStorage = Backend.Allocate<T>(_paramLength);
        _gradStorage = Backend.Allocate<T>(_paramLength);
        _bufferStorage = Backend.Allocate<T>(Math.Max(_bufferLength, 1));
        _segments = new ParamSegment[_params.Count];
        for (int i = 0; i < _params.Count; i++)
        {
            var e = _params[i].Entry;
            _params[i].Value = new Tensor<T>(_paramStorage, e.Offset, e.Shape);
            _params[i].Gradient = new Tensor<T>(_gradStorage, e.Offset, e.Shape);
            _segments[i] = new ParamSegment(e.Offset, e.Elements, e.Flags);
        }
        foreach (var b in _buffers) b.Value = new Tensor<T>(_bufferStorage, b.Entry.Offset, b.Entry.Shape);
        _segmentStorage = Backend.Allocate<ParamSegment>(_segments.Length);
        Backend.Upload(_segmentStorage.AsTensor(), _segments);
        IsAllocated = true;
        Initialize(seed);
    }

    /// <summary>(Re)initializes every parameter and buffer as torchvision does, deterministically from the seed.
    /// Tensor k draws from Philox stream k, so one tensor's values do not depend on the others' sizes.
    /// Gradients are zeroed and counters reset.</summary>
    public void Initialize(ulong seed)
    {
        EnsureAllocated();
        var host = new T[_paramLength];
        for (int i = 0; i < _params.Count; i++)
        {
            var e = _params[i].Entry;
            Fill(host.AsSpan((int)e.Offset, (int)e.Elements), e.Init, new PhiloxStream(seed, (uint)i));
        }
        Backend.Upload(Parameters, host);
        var bufferHost = new T[_bufferStorage!.Length];
        foreach (var b in _buffers) bufferHost.AsSpan((int)b.Entry.Offset, (int)b.Entry.Elements).Fill(T.CreateChecked(b.Entry.Init.Value));
        Backend.Upload(_bufferStorage.AsTensor(), bufferHost);
        Array.Clear(_counters);
        ZeroGradients();
    }

    private static void Fill(Span<T> dst, ParamInit init, PhiloxStream rng)
    {
        switch (init.Kind)
        {
            case InitKind.Constant:
                dst.Fill(T.CreateChecked(init.Value));
                break;
            case InitKind.KaimingNormalFanOut:
                for (int j = 0; j < dst.Length; j++) dst[j] = T.CreateChecked(init.Value * rng.NextGaussian());
                break;
            case InitKind.Uniform:
                for (int j = 0; j < dst.Length; j++) dst[j] = T.CreateChecked(init.Value * (2 * rng.NextDouble() - 1));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(init), $"unknown initialization {init.Kind}");
        }
    }

    // ---- flat views ------------------------------------------------------------------------------------

    /// <summary>The whole flat parameter buffer (FlatLength elements, alignment gaps included).</summary>
    public Tensor<T> Parameters => EnsureAllocated()._paramStorage!.AsTensor();
    public Tensor<T> Gradients => EnsureAllocated()._gradStorage!.AsTensor();
    /// <summary>The BN running statistics (at least one element even for a model without BN).</summary>
    public Tensor<T> Buffers => EnsureAllocated()._bufferStorage!.AsTensor();
    /// <summary>One segment per parameter tensor in registration order, already on the backend's device.</summary>
    public Tensor<ParamSegment> Segments => EnsureAllocated()._segmentStorage!.AsTensor();
    /// <summary>The same table on the host.</summary>
    public ReadOnlySpan<ParamSegment> HostSegments => _segments;

    /// <summary>One Fill over the flat gradient buffer.</summary>
    public void ZeroGradients() => Backend.Fill(Gradients, 0);

    /// <summary>A zero-filled buffer with the parameters' layout (momentum, Adam moments...). The caller owns it.</summary>
    public Storage<T> AllocateStateBuffer()
    {
        EnsureAllocated();
        return Backend.Allocate<T>(_paramLength);
    }

    /// <summary>The tensor with this name in a state buffer made by <see cref="AllocateStateBuffer"/>.</summary>
    public Tensor<T> StateView(Storage<T> state, string name)
    {
        var e = Find(name);
        if (e.Kind != StoreTensorKind.Parameter) throw new ArgumentException($"'{name}' is a {e.Kind}, not a parameter", nameof(name));
        if (state.Length != _paramLength) throw new ArgumentException($"state buffer of {state.Length} elements does not have the parameters' layout ({_paramLength})", nameof(state));
        return new Tensor<T>(state, e.Offset, e.Shape);
    }

    // ---- host access by name ---------------------------------------------------------------------------

    public bool Contains(string name) => _byName.ContainsKey(name);

    public StoreEntry Find(string name) =>
        _byName.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"no tensor named '{name}' in the parameter store");

    /// <summary>The device view of a parameter or buffer.</summary>
    public Tensor<T> View(string name)
    {
        var e = Find(name);
        EnsureAllocated();
        return e.Kind switch
        {
            StoreTensorKind.Parameter => new Tensor<T>(_paramStorage!, e.Offset, e.Shape),
            StoreTensorKind.Buffer => new Tensor<T>(_bufferStorage!, e.Offset, e.Shape),
            _ => throw new ArgumentException($"'{name}' is a host counter; use GetCounter", nameof(name)),
        };
    }

    /// <summary>The gradient view of a parameter.</summary>
    public Tensor<T> GradientView(string name)
    {
        var e = Find(name);
        if (e.Kind != StoreTensorKind.Parameter) throw new ArgumentException($"'{name}' is a {e.Kind} and has no gradient", nameof(name));
        EnsureAllocated();
        return new Tensor<T>(_gradStorage!, e.Offset, e.Shape);
    }

    public T[] GetHost(string name)
    {
        var view = View(name);
        var host = new T[view.Length];
        Backend.Download<T>(host, view);
        return host;
    }

    public void SetHost(string name, ReadOnlySpan<T> values)
    {
        var view = View(name);
        if (values.Length != view.Length) throw new ArgumentException($"'{name}' has {view.Length} elements {view.Shape}, got {values.Length}", nameof(values));
        Backend.Upload(view, values);
    }

    public T[] GetGradientHost(string name)
    {
        var view = GradientView(name);
        var host = new T[view.Length];
        Backend.Download<T>(host, view);
        return host;
    }

    public long GetCounter(string name) => _counters[CounterIndex(name)];
    public void SetCounter(string name, long value) => _counters[CounterIndex(name)] = value;
    public void IncrementCounter(int index) => _counters[index]++;

    private int CounterIndex(string name)
    {
        var e = Find(name);
        return e.Kind == StoreTensorKind.Counter ? (int)e.Offset : throw new ArgumentException($"'{name}' is a {e.Kind}, not a counter", nameof(name));
    }

    private ParameterStore<T> EnsureAllocated()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return IsAllocated ? this : throw new InvalidOperationException("the parameter store is not allocated yet: call Allocate after building the model");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        IsAllocated = false;
        _paramStorage?.Dispose();
        _gradStorage?.Dispose();
        _bufferStorage?.Dispose();
        _segmentStorage?.Dispose();
    }
}
