// The pretrain command on every rank but 0 of a data-parallel job: it takes rank 0's announcement (the resolved
// configuration, the start position, the run directory) instead of the command line, loads its own copy of the
// data, builds the same model for its share of the batch on its own device, receives rank 0's state, and trains
// in step with the others. It prints nothing and never touches the run directory; rank 0 reports for the job.
// It returns the status rank 0 returns for the same outcome (the stop and divergence decisions are collective).
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;

namespace SimClr.Training.Distributed;

public static class PretrainWorker
{
    public static int Run(DataParallelLaunch launch, CliContext ctx)
    {
        var announcement = launch.ReceiveAnnouncement();
        var config = announcement.Config;
        var data = Cli.Commands.PretrainCommand.LoadPretraining(config, TextWriter.Null);
        var spec = config.AugmentSpec();
        using var backend = BackendFactory.Create(launch.Device(DeviceRequest.Parse(config.Device)), TextWriter.Null);
        using var model = ModelState.Build(backend, config, spec.OutHeight, spec.OutWidth, launch.LocalPairs(config.BatchSize));
        using var momentum = model.Parameters.AllocateStateBuffer();
        using var parallel = launch.Join(backend, model, momentum, config.SyncBn, TextWriter.Null);
        var trainer = new Pretrainer(backend, config, data, run: null, metrics: null);
        var result = ProgressView.Run(ProgressMode.Quiet, TextWriter.Null, "pretrain", 0, announcement.Start.Step,
            sink => trainer.Run(model, momentum, announcement.Start, announcement.BestMetric, sink, ctx.Cancel, hooks: null, parallel: parallel));
        return result.Status switch
        {
            PretrainStatus.Diverged => (int)ExitCode.Diverged,
            PretrainStatus.Interrupted => (int)ExitCode.Interrupted,
            _ => (int)ExitCode.Ok,
        };
    }
}
