// The SimCLR projection head g(h) = z, as a PyTorch nn.Sequential named "head": for 2 layers
// head.0 Linear(F→hidden, no bias), head.1 BatchNorm1d, head.2 ReLU, head.3 Linear(hidden→out, bias);
// for 3 layers head.3 Linear(hidden→hidden, no bias), head.4 BatchNorm1d, head.5 ReLU, head.6 Linear(hidden→out, bias).
// Hidden linears have no bias because the BN right after them subtracts the batch mean, which cancels any bias
// (SimCLR v2 does the same). The output linear keeps a bias and has no BN (SimCLR v1 / common PyTorch heads).
// ReLUs run in place over the BN output.
// Accumulation rule: that of the children (parameter gradients +=, activation gradients =).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class ProjectionHead<T> : Sequential<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const string Prefix = "head";

    public ProjectionHead(ParameterStore<T> store, int inFeatures, int hiddenDim, int outDim, int layers)
        : base(store.Backend, Prefix)
    {
        if (layers is < 2 or > 3) throw new ArgumentOutOfRangeException(nameof(layers), $"the projection head has 2 or 3 linear layers, got {layers}");
        if (inFeatures <= 0 || hiddenDim <= 0 || outDim <= 0) throw new ArgumentException($"invalid projection head {inFeatures} → {hiddenDim} → {outDim}");
        InFeatures = inFeatures;
        HiddenDim = hiddenDim;
        OutDim = outDim;
        LinearLayers = layers;
        int index = 0, width = inFeatures;
        for (int i = 0; i < layers - 1; i++)
        {
            Add(new Linear<T>(store, $"{Prefix}.{index++}", width, hiddenDim, LinearBias.None));
            Add(new BatchNorm1d<T>(store, $"{Prefix}.{index++}", hiddenDim));
            Add(new Relu<T>(store.Backend, $"{Prefix}.{index++}", ReluPlacement.InPlace));
            width = hiddenDim;
        }
        Add(new Linear<T>(store, $"{Prefix}.{index}", width, outDim, LinearBias.Learned));
    }

    public int InFeatures { get; }
    public int HiddenDim { get; }
    public int OutDim { get; }
    public int LinearLayers { get; }
}
