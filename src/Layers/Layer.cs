// The layer contract. A layer registers its parameters with the ParameterStore when constructed, reserves
// its outputs, saved tensors and gradient buffers in an ActivationArena when planned for an input shape,
// and then runs explicit Forward and Backward passes that only call IBackend ops. There is no autograd:
// composite layers call their children's Backward in reverse.
// Accumulation rule (every layer): parameter gradients are ADDED to (+=, the caller zeroes them once per
// step), activation gradients are OVERWRITTEN (=) in the layer's own dx buffer. Residual joins sum their two
// branches explicitly (see BasicBlock/Bottleneck).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

/// <summary>BatchNorm behaviour: batch statistics and running-stat updates, or the running statistics.</summary>
public enum NormMode { Training, Inference }

/// <summary>Whether a layer's Backward writes the gradient with respect to its input.
/// The first layer of a network can skip it (nothing consumes it), which saves the largest dgrad.</summary>
public enum InputGradient { Compute, Skip }

public abstract class Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    protected Layer(IBackend<T> backend, string name)
    {
        ArgumentNullException.ThrowIfNull(backend);
        Backend = backend;
        Name = name;
    }

    public IBackend<T> Backend { get; }

    /// <summary>The state_dict prefix of this layer ("layer1.0.conv1"), or a descriptive name for parameterless layers.</summary>
    public string Name { get; }

    /// <summary>Reserves this layer's slots for inputs of <paramref name="input"/> (axis 0 = the largest batch)
    /// and returns the output shape. Planning again (with a new arena) replaces the previous plan.</summary>
    public Shape Plan(ActivationArena<T> arena, Shape input, InputGradient inputGradient)
    {
        ArgumentNullException.ThrowIfNull(arena);
        InputGradientSlot = null;
        FirstTick = arena.Tick + 1;
        var output = PlanCore(arena, input, inputGradient);
        LastTick = arena.Tick;
        return output;
    }

    /// <summary>Reserves the slots. A leaf takes one tick (arena.NextTick) and reserves its dx as a gradient slot
    /// written at that tick; a composite plans its children and extends each gradient to its last reader.</summary>
    protected abstract Shape PlanCore(ActivationArena<T> arena, Shape input, InputGradient inputGradient);

    /// <summary>The slot Backward returns dx in (null when the input gradient is skipped). Whoever reads that dx
    /// after this layer's Backward must extend the slot's lifetime to its own ticks.</summary>
    public ArenaSlot<T>? InputGradientSlot { get; protected set; }

    /// <summary>The ticks this layer's leaves took when planned: Backward runs them from LastTick down to FirstTick.</summary>
    public int FirstTick { get; private set; }
    public int LastTick { get; private set; }

    /// <summary>Computes the output into this layer's arena slot and returns a view of it. The input must stay
    /// unchanged until Backward. Its batch may be smaller than planned.</summary>
    public abstract Tensor<T> Forward(Tensor<T> x);

    /// <summary>Given dL/dy, adds the parameter gradients and returns dL/dx (overwritten in this layer's own
    /// buffer), or an empty tensor when planned with <see cref="InputGradient.Skip"/>.</summary>
    public abstract Tensor<T> Backward(Tensor<T> dy);

    /// <summary>Switches BatchNorm layers (and composites containing them) between batch and running statistics.</summary>
    public virtual void SetMode(NormMode mode) { }

    /// <summary>The layers a composite is made of, in forward order (empty for a leaf).</summary>
    public virtual IEnumerable<Layer<T>> Children => [];

    /// <summary>This layer and every layer inside it, depth first.</summary>
    public IEnumerable<Layer<T>> SelfAndDescendants() => Children.SelectMany(c => c.SelfAndDescendants()).Prepend(this);

    /// <summary>A leaf's planning step for its input gradient: takes the leaf's tick and, when the gradient is
    /// computed, reserves dx as a gradient slot written at that tick and publishes it as <see cref="InputGradientSlot"/>.</summary>
    protected ArenaSlot<T>? ReserveLeafInputGradient(ActivationArena<T> arena, Shape input, Layout layout, InputGradient inputGradient)
    {
        int tick = arena.NextTick();
        InputGradientSlot = inputGradient == InputGradient.Compute ? arena.ReserveGradient(Name + ".dx", input, layout, tick) : null;
        return InputGradientSlot;
    }

    protected static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    protected static void CheckPlanned(object? slot, string layer)
    {
        if (slot is null) throw new InvalidOperationException($"{layer}: Plan has not been called");
    }

    protected static void CheckGradient(Tensor<T> dy, Tensor<T> y, string layer)
    {
        if (dy.Shape != y.Shape) throw new ArgumentException($"{layer}: gradient {dy.Shape} does not match the output {y.Shape} of the last Forward");
    }
}
