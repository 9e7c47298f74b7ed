// The two evaluation protocols on frozen encoder features: the weighted kNN vote and the linear probe.
// pretrain offers both (it ends with both, and runs the kNN monitor during training); knn and linear-eval
// each offer their own.
using System.CommandLine;

namespace SimClr.Training.Cli.Options;

internal sealed class KnnOptions : OptionGroup
{
    public KnnOptions()
    {
        Bound(new Option<int>("--knn-k") { Description = "kNN neighbours (default 200)" }, (c, v) => c with { KnnK = v });
        Bound(new Option<double>("--knn-temperature") { Description = "kNN vote temperature (default 0.1)" }, (c, v) => c with { KnnTemperature = v });
    }
}

internal sealed class LinearEvalOptions : OptionGroup
{
    public LinearEvalOptions()
    {
        Bound(new Option<int>("--linear-epochs") { Description = "Linear evaluation epochs (default 100)" }, (c, v) => c with { LinearEpochs = v });
        Bound(new Option<double>("--linear-lr") { Description = "Linear evaluation learning rate (default 0.1, Nesterov momentum 0.9, cosine)" }, (c, v) => c with { LinearLr = v });
        Bound(new Option<double>("--linear-weight-decay") { Description = "Linear evaluation weight decay (default 1e-6)" }, (c, v) => c with { LinearWeightDecay = v });
        Bound(new Option<int>("--linear-batch-size") { Description = "Linear evaluation batch size (default 256)" }, (c, v) => c with { LinearBatchSize = v });
    }
}
