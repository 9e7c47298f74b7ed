// Entry point: wires Ctrl-C to a cancellation token (the trainer saves a checkpoint and stops cleanly)
// and hands the arguments to the command line.
using SimClr.Training.Cli;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl-C asks for a clean stop; a second one ends the process at once.
    if (cancel.IsCancellationRequested) return;
    e.Cancel = true;
    Console.Error.WriteLine("stopping: saving a checkpoint (press Ctrl-C again to abort)");
    cancel.Cancel();
};
return CliApp.Run(args, new CliContext(Console.Out, Console.Error, cancel.Token));
