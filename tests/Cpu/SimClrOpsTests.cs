// SimCLR ops on the CPU reference backend: L2 normalization, NT-Xent (a hand-sized example written out
// in closed form, an independent softmax-cross-entropy formulation, finite differences, lossGrad),
// cosine similarity and softmax cross-entropy (finite differences, stability, label checks).
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class SimClrOpsTests
{
    [Fact]
    public void L2NormalizeMatchesDefinitionAndFiniteDifferences()
    {
        // eps = 0.5 with row 2 scaled to a norm well below it: that row takes the constant-divisor branch
        // (y = x/eps), and a finite-difference step cannot carry it across the boundary.
        var s = new RowsShape(5, 7, Epsilon: 0.5);
        var xv = Random(35, 1);
        for (int c = 14; c < 21; c++) xv[c] *= 0.05;
        var x = Tensor(xv);
        var y = Filled(35, double.NaN); var norms = Zeros(5);
        Backend.L2NormalizeForward(y, norms, x, s);
        for (int r = 0; r < 5; r++)
        {
            double n = Math.Sqrt(xv.Skip(r * 7).Take(7).Sum(v => v * v));
            Assert.Equal(n, norms.Span[r], 15);
            for (int c = 0; c < 7; c++) Assert.Equal(xv[r * 7 + c] / Math.Max(n, 0.5), y.Span[r * 7 + c], 14);
        }
        Assert.True(norms.Span[2] < 0.25);

        var rv = Random(35, 2);
        double Loss() { Backend.L2NormalizeForward(y, norms, x, s); return Dot(y, rv); }
        Loss();
        var dx = Filled(35, double.NaN);
        Backend.L2NormalizeBackward(dx, Tensor(rv), y, norms, s);
        Check(Loss, x, Read(dx), "l2 normalize dx");
    }

    [Fact]
    public void NtXentMatchesHandComputedExample()
    {
        // 2N = 4, dim 2, τ = 0.5. Unit vectors: ẑ0 = (1,0), ẑ1 = (0,1), ẑ2 = (1,1)/√2, ẑ3 = (−1,0).
        // Positives: 0↔2, 1↔3. Cosines: c01 = 0, c02 = 1/√2, c03 = −1, c12 = 1/√2, c13 = 0, c23 = −1/√2.
        var z = Tensor(new double[] { 2, 0, 0, 3, 1, 1, -1, 0 });
        double r2 = Math.Sqrt(2);
        // s = c/τ = 2c, diagonal excluded from every log-sum-exp.
        double l0 = Math.Log(Math.Exp(0) + Math.Exp(r2) + Math.Exp(-2)) - r2;
        double l1 = Math.Log(Math.Exp(0) + Math.Exp(r2) + Math.Exp(0)) - 0;
        double l2 = Math.Log(Math.Exp(r2) + Math.Exp(r2) + Math.Exp(-r2)) - r2;
        double l3 = Math.Log(Math.Exp(-2) + Math.Exp(0) + Math.Exp(-r2)) - 0;
        var loss = Filled(1, double.NaN); var lse = Zeros(4); var norms = Zeros(4);
        Backend.NtXentForward(loss, lse, norms, z, new NtXentShape(4, 2, 0.5));
        Assert.Equal((l0 + l1 + l2 + l3) / 4, loss.Span[0], 14);
        AssertClose(Read(norms), new[] { 2, 3, r2, 1 }, "nt-xent norms", 1e-15);
        Assert.Equal(Math.Log(Math.Exp(0) + Math.Exp(r2) + Math.Exp(-2)), lse.Span[0], 14);
    }

    /// <summary>NT-Xent written as PyTorch-style cross-entropy over the 2N−1 other rows, from cosines.</summary>
    private static double IndependentNtXent(double[] z, int rows, int dim, double tau)
    {
        double Cos(int i, int j)
        {
            double dot = 0, ni = 0, nj = 0;
            for (int c = 0; c < dim; c++) { dot += z[i * dim + c] * z[j * dim + c]; ni += z[i * dim + c] * z[i * dim + c]; nj += z[j * dim + c] * z[j * dim + c]; }
            return dot / (Math.Sqrt(ni) * Math.Sqrt(nj));
        }
        double total = 0;
        for (int i = 0; i < rows; i++)
        {
            int pos = i < rows / 2 ? i + rows / 2 : i - rows / 2;
            var logits = Enumerable.Range(0, rows).Where(j => j != i).Select(j => Cos(i, j) / tau).ToArray();
            double max = logits.Max();
            total += -(Cos(i, pos) / tau) + max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        }
        return total / rows;
    }

    [Theory]
    [InlineData(6, 5, 0.5)]
    [InlineData(10, 3, 0.1)]
    [InlineData(2, 4, 1.0)]
    public void NtXentMatchesIndependentFormulaAndFiniteDifferences(int rows, int dim, double tau)
    {
        var s = new NtXentShape(rows, dim, tau);
        var zv = Random(rows * dim, 3);
        var z = Tensor(zv);
        var loss = Zeros(1); var lse = Zeros(rows); var norms = Zeros(rows);
        Backend.NtXentForward(loss, lse, norms, z, s);
        Assert.Equal(IndependentNtXent(zv, rows, dim, tau), loss.Span[0], 12);

        double Loss() { Backend.NtXentForward(loss, lse, norms, z, s); return loss.Span[0]; }
        Loss();
        var dz = Filled(rows * dim, double.NaN);
        Backend.NtXentBackward(dz, z, lse, norms, s);
        Check(Loss, z, Read(dz), "nt-xent dz");

        var scaled = Filled(rows * dim, double.NaN);
        Backend.NtXentBackward(scaled, z, lse, norms, s, lossGrad: -2.5);
        AssertClose(Read(scaled), Read(dz).Select(v => -2.5 * v).ToArray(), "nt-xent lossGrad", 1e-14);
    }

    [Fact]
    public void NtXentFloatAgreesWithDouble()
    {
        var s = new NtXentShape(14, 9, 0.2);
        var zv = Random(14 * 9, 4);
        var loss = Zeros(1); var lse = Zeros(14); var norms = Zeros(14); var dz = Zeros(14 * 9);
        Backend.NtXentForward(loss, lse, norms, Tensor(zv), s);
        Backend.NtXentBackward(dz, Tensor(zv), lse, norms, s);
        var f = new CpuBackend<float>();
        var lossF = ConvTests.FloatTensor(1); var lseF = ConvTests.FloatTensor(14); var normsF = ConvTests.FloatTensor(14); var dzF = ConvTests.FloatTensor(14 * 9);
        f.NtXentForward(lossF, lseF, normsF, ConvTests.FloatTensor(zv), s);
        f.NtXentBackward(dzF, ConvTests.FloatTensor(zv), lseF, normsF, s);
        AssertClose(ConvTests.Widen(lossF), Read(loss), "float nt-xent loss", 1e-5);
        AssertClose(ConvTests.Widen(dzF), Read(dz), "float nt-xent dz", 1e-5);
    }

    [Fact]
    public void NtXentRejectsOddRows()
    {
        Assert.Throws<ArgumentException>(() => Backend.NtXentForward(Zeros(1), Zeros(3), Zeros(3), Zeros(6), new NtXentShape(3, 2, 0.5)));
    }

    [Fact]
    public void CosineSimilarityMatchesDefinition()
    {
        var a = Random(3 * 5, 5); var b = Random(4 * 5, 6);
        var s = Filled(12, double.NaN);
        Backend.CosineSimilarity(s, Tensor(a), Tensor(b), 3, 4, 5);
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
        {
            var ai = a.Skip(i * 5).Take(5).ToArray(); var bj = b.Skip(j * 5).Take(5).ToArray();
            double expected = ai.Zip(bj, (p, q) => p * q).Sum() / Math.Sqrt(ai.Sum(v => v * v) * bj.Sum(v => v * v));
            Assert.Equal(expected, s.Span[i * 4 + j], 14);
        }
    }

    [Fact]
    public void SoftmaxCrossEntropyMatchesDefinitionAndFiniteDifferences()
    {
        var s = new ClassShape(5, 7);
        var logits = Tensor(Random(35, 7, -3, 3));
        var labels = Ints(new[] { 0, 6, 3, 3, 1 });
        var loss = Filled(1, double.NaN); var probs = Zeros(35);
        Backend.SoftmaxCrossEntropyForward(loss, probs, logits, labels, s);
        double expected = 0;
        for (int r = 0; r < 5; r++)
        {
            var row = logits.Span.Slice(r * 7, 7).ToArray();
            double z = row.Sum(Math.Exp);
            expected += -Math.Log(Math.Exp(row[labels.Span[r]]) / z) / 5;
            for (int c = 0; c < 7; c++) Assert.Equal(Math.Exp(row[c]) / z, probs.Span[r * 7 + c], 14);
        }
        Assert.Equal(expected, loss.Span[0], 13);

        double Loss() { Backend.SoftmaxCrossEntropyForward(loss, probs, logits, labels, s); return 3 * loss.Span[0]; }
        Loss();
        var d = Filled(35, double.NaN);
        Backend.SoftmaxCrossEntropyBackward(d, probs, labels, s, lossGrad: 3);
        Check(Loss, logits, Read(d), "softmax ce dlogits");
    }

    [Fact]
    public void SoftmaxCrossEntropyIsStableForHugeLogits()
    {
        var s = new ClassShape(1, 3);
        var loss = Zeros(1); var probs = Zeros(3);
        Backend.SoftmaxCrossEntropyForward(loss, probs, Tensor(new[] { 1000.0, 1000.0 + Math.Log(3), 0 }), Ints(new[] { 0 }), s);
        Assert.Equal(Math.Log(4), loss.Span[0], 12);
        Assert.Equal(new[] { 0.25, 0.75, 0 }, Read(probs).Select(v => Math.Round(v, 12)).ToArray());
    }

    [Fact]
    public void SoftmaxCrossEntropyRejectsLabelsOutOfRange()
    {
        var s = new ClassShape(2, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.SoftmaxCrossEntropyForward(Zeros(1), Zeros(6), Zeros(6), Ints(new[] { 0, 3 }), s));
        Assert.Contains("label 3", e.Message);
        Assert.Throws<ArgumentException>(() => Backend.SoftmaxCrossEntropyBackward(Zeros(6), Zeros(6), Ints(new[] { -1, 0 }), s));
    }
}
