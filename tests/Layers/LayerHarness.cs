// Gradient-check harness for layers on the double CPU backend: builds a layer into a fresh ParameterStore,
// plans it in a fresh arena, and compares Backward's input and parameter gradients with central finite
// differences of L = Σ r·Forward(x) for a fixed random projection r (GradientCheck's global relative error).
using SimClr.Kernels;
using SimClr.Layers;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Layers;

internal static class LayerHarness
{
    /// <summary>Builds with <paramref name="build"/>, allocates (seed 1), plans for <paramref name="input"/>, and checks
    /// dx and the gradient of every parameter.</summary>
    public static void CheckGradients(Func<ParameterStore<double>, Layer<double>> build, Shape input, int seed = 11,
        double inputScale = 1.0, double tolerance = 1e-6)
    {
        using var store = new ParameterStore<double>(Backend);
        var layer = build(store);
        if (store.ParameterSlots.Count > 0) store.Allocate(1);
        using var arena = new ActivationArena<double>(Backend);
        var output = layer.Plan(arena, input, InputGradient.Compute);
        arena.Allocate();
        if (store.IsAllocated) PerturbParameters(store, seed + 1000);

        var x = Tensor(Random(input.Elements, seed, -inputScale, inputScale), input);
        var r = Random(output.Elements, seed + 1);
        double Loss() => Dot(layer.Forward(x), r);

        Loss();
        if (store.IsAllocated) store.ZeroGradients();
        var dxTensor = layer.Backward(Tensor(r, output));
        Assert.Equal(input, dxTensor.Shape);
        var dx = Read(dxTensor);
        var grads = store.ParameterSlots.Select(p => store.GetGradientHost(p.Name)).ToArray();

        Check(Loss, x, dx, $"{layer.Name}: dx");
        for (int i = 0; i < grads.Length; i++)
        {
            string name = store.ParameterSlots[i].Name;
            Check(Loss, store.View(name), grads[i], $"{layer.Name}: d{name}", tolerance);
        }
    }

    /// <summary>Moves the BN parameters and biases away from their initial values (γ = 1, β = 0 would hide scale
    /// and shift errors). Weights keep their random initialization, whose scale keeps the network well conditioned.</summary>
    public static void PerturbParameters(ParameterStore<double> store, int seed)
    {
        foreach (var p in store.ParameterSlots.Where(p => p.Shape.Rank == 1))
        {
            var values = store.GetHost(p.Name);
            var noise = Random(values.Length, seed++, -0.3, 0.3);
            for (int i = 0; i < values.Length; i++) values[i] += noise[i];
            store.SetHost(p.Name, values);
        }
    }
}
