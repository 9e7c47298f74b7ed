// OutputPaths.Resolve: two spellings of one file compare equal however links are nested, as realpath(3).
using SimClr.Training.Cli;
using SimClr.Training.Interop;

namespace SimClr.Tests.Interop;

public class OutputPathsTests
{
    [Fact]
    public void LinksAnywhereAlongThePathResolveToTheSameFile()
    {
        using var dir = new Data.TempDir();
        string real = dir.Sub(Path.Combine("a", "b"));
        string file = Path.Combine(real, "f.safetensors");
        File.WriteAllText(file, "x");
        Directory.CreateSymbolicLink(dir.File("l1"), Path.Combine("a", "b"));          // relative directory link
        Directory.CreateSymbolicLink(dir.File("l2"), dir.File("l1"));                  // a link to a link
        File.CreateSymbolicLink(Path.Combine(real, "g.safetensors"), "f.safetensors"); // relative file link
        string expected = Path.GetFullPath(file);
        foreach (var spelling in new[] { file, dir.File(Path.Combine("l1", "f.safetensors")), dir.File(Path.Combine("l2", "g.safetensors")), dir.File(Path.Combine("l2", "..", "a", "b", "f.safetensors")) })
            Assert.Equal(expected, OutputPaths.Resolve(spelling));
        Assert.Equal(Path.Combine(expected + "-missing", "x"), OutputPaths.Resolve(Path.Combine(dir.File("l1"), "f.safetensors-missing", "x")));
    }

    [Fact]
    public void ALinkLoopIsOneClearError()
    {
        using var dir = new Data.TempDir();
        File.CreateSymbolicLink(dir.File("p"), dir.File("q"));
        File.CreateSymbolicLink(dir.File("q"), dir.File("p"));
        var e = Assert.Throws<UserError>(() => OutputPaths.Resolve(dir.File("p")));
        Assert.Contains("symbolic links", e.Message);
    }
}
