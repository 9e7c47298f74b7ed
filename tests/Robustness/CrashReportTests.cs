// No input ends in a stack trace: an exception that is not the program's own error is a bug, and the top-level
// handler says so in one line that names the log file holding the trace.
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Robustness;

public class CrashReportTests
{
    [Fact]
    public void AnUnexpectedExceptionIsReportedAsABugWithItsLogFile()
    {
        string dir = TinyRun.NewDir("crash");
        try
        {
            var hooks = new TrainingHooks { AfterStep = (step, _) => { if (step == 3) throw new InvalidOperationException("injected fault\nsecond line"); } };
            var r = Cli.Run(hooks, TinyRun.Args(dir, 1));
            Hostile.AssertOneLine(r, (int)ExitCode.InternalError, "bug", "InvalidOperationException", "injected fault");
            Assert.DoesNotContain("second line", r.Err);
            string log = r.Err[(r.Err.IndexOf("is in ", StringComparison.Ordinal) + 6)..].Split(';')[0];
            Assert.True(File.Exists(log), $"no log at '{log}'");
            string trace = File.ReadAllText(log);
            File.Delete(log);
            Assert.Contains("injected fault", trace);
            Assert.Contains("   at ", trace);
            Assert.Contains("--shapes-count 96", trace);
        }
        finally { Directory.Delete(dir, true); }
    }
}
