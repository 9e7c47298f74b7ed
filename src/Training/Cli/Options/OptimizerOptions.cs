// SimCLR pretraining's optimization: epochs, batch, NT-Xent temperature, LARS and its schedule.
using System.CommandLine;
using SimClr.Training.Config;

namespace SimClr.Training.Cli.Options;

internal sealed class OptimizerOptions : OptionGroup
{
    public OptimizerOptions()
    {
        Bound(new Option<int>("--epochs") { Description = $"Pretraining epochs {DefaultText.Of(c => c.Epochs)}" }, (c, v) => c with { Epochs = v });
        Bound(new Option<int>("--batch-size") { Description = $"Images per step; each gives two views {DefaultText.Of(c => c.BatchSize)}" }, (c, v) => c with { BatchSize = v });
        Bound(new Option<double>("--temperature") { Description = $"NT-Xent temperature (default 0.5 for ≤ 32 px, 0.2 below 96 px, 0.1 from 96 px; {DefaultText.Format(RunConfig.ShapesDefaults.Temperature)} with the shapes preset)" }, (c, v) => c with { Temperature = v });
        Bound(Choice("--lr-scaling", $"Peak lr = base·B/256 (linear) or base·√B (sqrt) {DefaultText.Of(c => c.LrScaling)}", "linear", "sqrt"),
            (c, v) => c with { LrScaling = v == "sqrt" ? LrScaling.Sqrt : LrScaling.Linear });
        Bound(new Option<double>("--base-lr") { Description = $"Base learning rate (default 0.3 with linear scaling, 0.075 with sqrt; {DefaultText.Format(RunConfig.ShapesDefaults.BaseLr)} with the shapes preset)" }, (c, v) => c with { BaseLr = v });
        Bound(new Option<double>("--warmup-epochs") { Description = $"Linear warmup epochs before the cosine decay, clipped to a tenth of a shorter run {DefaultText.Of(c => c.WarmupEpochs)}" }, (c, v) => c with { WarmupEpochs = v });
        Bound(new Option<double>("--weight-decay") { Description = $"LARS weight decay, not applied to BN and biases {DefaultText.Of(c => c.WeightDecay)}" }, (c, v) => c with { WeightDecay = v });
        Bound(new Option<double>("--momentum") { Description = $"LARS momentum {DefaultText.Of(c => c.Momentum)}" }, (c, v) => c with { Momentum = v });
        Bound(new Option<double>("--trust-coefficient") { Description = $"LARS trust coefficient η {DefaultText.Of(c => c.TrustCoefficient)}" }, (c, v) => c with { TrustCoefficient = v });
        Bound(Choice("--sync-bn", "Batch norm statistics over the global batch of all ranks (on) or each rank's slice (off); auto (the default) is on with more than one rank (mpirun/srun)", "auto", "on", "off"),
            (c, v) => c with { SyncBn = v switch { "on" => SyncBnMode.On, "off" => SyncBnMode.Off, _ => SyncBnMode.Auto } });
    }
}
