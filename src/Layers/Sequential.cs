// A chain of layers: Forward runs them in order, Backward in reverse, handing each layer's dx to the one
// before (and keeping that dx live in the arena until the one before has finished). Only the first layer may
// skip its input gradient. ResNet and the projection head are Sequentials.
// Accumulation rule: that of the children (parameter gradients +=, activation gradients =).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public class Sequential<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<Layer<T>> _layers = [];
    private bool _planned;

    public Sequential(IBackend<T> backend, string name) : base(backend, name) { }

    public IReadOnlyList<Layer<T>> Layers => _layers;

    /// <summary>Appends a layer (while building, before planning) and returns it.</summary>
    public TLayer Add<TLayer>(TLayer layer) where TLayer : Layer<T>
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (_planned) throw new InvalidOperationException($"{Name}: cannot add layers after planning");
        _layers.Add(layer);
        return layer;
    }

    protected override Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        if (_layers.Count == 0) throw new InvalidOperationException($"{Name}: no layers");
        var shape = input;
        for (int i = 0; i < _layers.Count; i++)
            shape = _layers[i].Plan(arena, shape, i == 0 ? inputGradient : InputGradient.Compute);
        // Layer i's dx is read by layer i-1's Backward, which runs over ticks [FirstTick, LastTick] of layer i-1.
        for (int i = 1; i < _layers.Count; i++)
            _layers[i].InputGradientSlot?.ExtendTo(_layers[i - 1].FirstTick);
        InputGradientSlot = _layers[0].InputGradientSlot;
        _planned = true;
        return shape;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        foreach (var layer in _layers) x = layer.Forward(x);
        return x;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        for (int i = _layers.Count - 1; i >= 0; i--) dy = _layers[i].Backward(dy);
        return dy;
    }

    public override void SetMode(NormMode mode)
    {
        foreach (var layer in _layers) layer.SetMode(mode);
    }

    public override IEnumerable<Layer<T>> Children => _layers;
}
