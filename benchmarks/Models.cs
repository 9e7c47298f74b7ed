// What the benchmarks need to know about the layers' models without running them: the LARS parameter
// segment tables (read from the parameter store's registrations, so they are exactly the trainer's) and
// the flop count of a training step, walked from the encoder's structure.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Layers;

namespace SimClr.Benchmarks;

public static class Models
{
    /// <summary>The segment table of encoder + SimCLR head (hidden = feature width, 128 out), as the
    /// trainer's parameter store lays it out. Built on a host backend without allocating the store.</summary>
    public static ParamSegment[] Segments(ResNetArch arch, StemKind stem, double width = 1.0)
    {
        using var host = new CpuBackend<float>();
        using var store = new ParameterStore<float>(host);
        var encoder = new ResNet<float>(store, arch, stem, width);
        _ = new ProjectionHead<float>(store, encoder.FeatureDim, encoder.FeatureDim, 128, 2);
        return store.Entries.Where(e => e.Kind == StoreTensorKind.Parameter)
            .Select(e => new ParamSegment(e.Offset, e.Elements, e.Flags)).ToArray();
    }

    /// <summary>Flops of one training step's convolutions and linears: the forward, plus the data and
    /// filter gradients (each as large as the forward), less the first conv's data gradient, which
    /// training skips. BN, ReLU, pooling, the loss and the optimizer are not counted (they are small
    /// next to the convolutions and bound by memory).</summary>
    public static double TrainingFlops(SimClrModel<float> model)
    {
        var input = model.InputShape;
        int rows = input[0], h = input[2], w = input[3];
        double forward = 0, firstConv = 0;
        foreach (var layer in model.Encoder.Layers)
        {
            switch (layer)
            {
                case Conv2d<float> c:
                    (h, w) = (Out(h, c.Kernel, c.Stride, c.Pad), Out(w, c.Kernel, c.Stride, c.Pad));
                    double f = 2.0 * rows * h * w * c.OutChannels * c.InChannels * c.Kernel * c.Kernel;
                    if (forward == 0) firstConv = f;
                    forward += f;
                    break;
                case MaxPool2d<float> m:
                    (h, w) = (Out(h, m.Window, m.Stride, m.Pad), Out(w, m.Window, m.Stride, m.Pad));
                    break;
                case ResidualBlock<float> b:
                    int oh = Out(h, 3, b.Stride, 1), ow = Out(w, 3, b.Stride, 1);
                    double outPixels = (double)rows * oh * ow;
                    if (b is Bottleneck<float> bn)
                    {
                        int p = bn.Planes;
                        forward += 2.0 * rows * h * w * p * b.InChannels;      // 1×1 reduce at the input size
                        forward += 2.0 * outPixels * p * p * 9;                 // 3×3 with the stride
                        forward += 2.0 * outPixels * b.OutChannels * p;         // 1×1 expand
                    }
                    else
                    {
                        forward += 2.0 * outPixels * b.OutChannels * b.InChannels * 9;
                        forward += 2.0 * outPixels * b.OutChannels * b.OutChannels * 9;
                    }
                    if (b.HasProjection) forward += 2.0 * outPixels * b.OutChannels * b.InChannels;
                    (h, w) = (oh, ow);
                    break;
            }
        }
        foreach (var layer in model.Head.Layers)
            if (layer is Linear<float> l) forward += 2.0 * rows * l.InFeatures * l.OutFeatures;
        return 3 * forward - firstConv;
    }

    private static int Out(int size, int kernel, int stride, int pad) => (size + 2 * pad - kernel) / stride + 1;
}
