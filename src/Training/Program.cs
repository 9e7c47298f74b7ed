// Entry point: wires Ctrl-C to a cancellation token and hands the arguments to the command line. The first
// Ctrl-C is acknowledged at once on its own line (above the bars when they are shown); what stops where is up
// to the phase in progress (a step finishes or is abandoned, an evaluation stops) and it says so. A second
// Ctrl-C ends the process at once.
using SimClr.Training.Cli;
using SimClr.Training.Runs;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (cancel.IsCancellationRequested)
    {
        ProgressView.Release();
        return;
    }
    e.Cancel = true;
    ProgressView.Notice("Ctrl-C: stopping with a checkpoint (press Ctrl-C again to end at once)");
    // Cancellation callbacks may write a checkpoint and end the process; they must not run on the thread that
    // delivers the signal, which the runtime waits for.
    ThreadPool.QueueUserWorkItem(_ => cancel.Cancel());
};
return CliApp.Run(args, new CliContext(Console.Out, Console.Error, cancel.Token)
{
    EndProcess = code =>
    {
        ProgressView.Release();
        Console.Out.Flush();
        Environment.Exit(code);
    },
});
