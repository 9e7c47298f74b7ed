// GEMM and the linear layer on the CPU reference backend: GEMM against a triple loop written here
// (every transpose combination, alpha, beta, sizes that are not multiples of any block), the float path
// against the double reference, linear gradients against finite differences, and the accumulation rule.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using static SimClr.Tests.Support.GradientCheck;

namespace SimClr.Tests.Cpu;

public class DenseTests
{
    /// <summary>C = alpha·op(A)·op(B) + beta·C from the definition, A stored [M,K] or [K,M], B [K,N] or [N,K].</summary>
    private static double[] NaiveGemm(double[] a, double[] b, double[] c, GemmShape s)
    {
        var result = new double[s.M * s.N];
        for (int i = 0; i < s.M; i++)
        for (int j = 0; j < s.N; j++)
        {
            double sum = 0;
            for (int p = 0; p < s.K; p++)
            {
                double av = s.TransA == Transpose.None ? a[i * s.K + p] : a[p * s.M + i];
                double bv = s.TransB == Transpose.None ? b[p * s.N + j] : b[j * s.K + p];
                sum += av * bv;
            }
            result[i * s.N + j] = s.Alpha * sum + s.Beta * c[i * s.N + j];
        }
        return result;
    }

    public static TheoryData<int, int, int, Transpose, Transpose, double, double> GemmCases()
    {
        var data = new TheoryData<int, int, int, Transpose, Transpose, double, double>();
        foreach (var ta in new[] { Transpose.None, Transpose.Transposed })
        foreach (var tb in new[] { Transpose.None, Transpose.Transposed })
        {
            data.Add(1, 1, 1, ta, tb, 1.0, 0.0);
            data.Add(3, 5, 7, ta, tb, 1.0, 0.0);
            data.Add(37, 29, 53, ta, tb, 0.75, 0.5);
            data.Add(97, 131, 259, ta, tb, -1.25, 1.0);
            data.Add(5, 300, 17, ta, tb, 2.0, -0.5);
            data.Add(300, 70, 40, ta, tb, 1.0, 1.0);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void GemmMatchesTripleLoop(int m, int n, int k, Transpose ta, Transpose tb, double alpha, double beta)
    {
        var s = new GemmShape(m, n, k, ta, tb, alpha, beta);
        var a = Random(m * k, 1); var b = Random(k * n, 2); var c0 = Random(m * n, 3);
        var c = Tensor(c0);
        Backend.Gemm(c, Tensor(a), Tensor(b), s);
        AssertClose(Read(c), NaiveGemm(a, b, c0, s), "gemm", 1e-13);
    }

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void FloatGemmAgreesWithDouble(int m, int n, int k, Transpose ta, Transpose tb, double alpha, double beta)
    {
        var s = new GemmShape(m, n, k, ta, tb, alpha, beta);
        var a = Random(m * k, 4); var b = Random(k * n, 5); var c0 = Random(m * n, 6);
        var cf = ConvTests.FloatTensor(c0);
        new CpuBackend<float>().Gemm(cf, ConvTests.FloatTensor(a), ConvTests.FloatTensor(b), s);
        // The reference is computed from the float-rounded inputs, so only the float arithmetic differs.
        double[] Round(double[] v) => v.Select(x => (double)(float)x).ToArray();
        AssertClose(ConvTests.Widen(cf), NaiveGemm(Round(a), Round(b), Round(c0), s), "float gemm", 1e-5);
    }

    [Theory]
    [InlineData(Transpose.None, Transpose.None)]
    [InlineData(Transpose.Transposed, Transpose.Transposed)]
    public void GemmLargerThanOnePackedStepMatchesTripleLoop(Transpose ta, Transpose tb)
    {
        // op(B) of 2060×2050 is more than the backend packs at once, so K is walked in two steps.
        var s = new GemmShape(5, 2050, 2060, ta, tb, 0.5, 0.0);
        var a = Random(5 * 2060, 21); var b = Random(2060 * 2050, 22);
        var c = Filled(5 * 2050, double.NaN);
        Backend.Gemm(c, Tensor(a), Tensor(b), s);
        AssertClose(Read(c), NaiveGemm(a, b, new double[5 * 2050], s), "gemm in steps", 1e-13);
    }

    [Fact]
    public void GemmWithZeroBetaIgnoresGarbageInC()
    {
        var s = new GemmShape(7, 9, 11);
        var a = Random(7 * 11, 7); var b = Random(11 * 9, 8);
        var c = Filled(7 * 9, double.NaN);
        Backend.Gemm(c, Tensor(a), Tensor(b), s);
        AssertClose(Read(c), NaiveGemm(a, b, new double[7 * 9], s), "gemm beta=0", 1e-13);
    }

    [Fact]
    public void GemmWithZeroAlphaOnlyScalesC()
    {
        var c0 = Random(6, 23);
        var c = Tensor(c0);
        Backend.Gemm(c, Filled(6, double.NaN), Filled(9, double.NaN), new GemmShape(2, 3, 3, Alpha: 0, Beta: 0.5));
        Assert.Equal(c0.Select(v => 0.5 * v).ToArray(), Read(c));
    }

    [Fact]
    public void GemmRejectsWrongSizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Backend.Gemm(Zeros(6), Zeros(6), Zeros(5), new GemmShape(2, 3, 3)));
        Assert.Contains("b", e.ParamName);
    }

    [Theory]
    [InlineData(3, 5, 7, true)]
    [InlineData(5, 6, 3, false)]
    [InlineData(1, 1, 1, true)]
    public void LinearGradientsMatchFiniteDifferences(int batch, int inputs, int outputs, bool withBias)
    {
        var s = new LinearShape(batch, inputs, outputs);
        var x = Tensor(Random(batch * inputs, 10));
        var w = Tensor(Random(outputs * inputs, 11));
        var bias = withBias ? Tensor(Random(outputs, 12)) : default;
        var r = Random(batch * outputs, 13);
        var y = Zeros(batch * outputs);
        double Loss() { Backend.LinearForward(y, x, w, bias, s); return Dot(y, r); }

        var dx = Filled(batch * inputs, double.NaN);
        Backend.LinearBackwardData(dx, Tensor(r), w, s);
        Check(Loss, x, Read(dx), "linear dx");

        var dw = Zeros(outputs * inputs);
        var db = withBias ? Zeros(outputs) : default;
        Backend.LinearBackwardWeights(dw, db, Tensor(r), x, s);
        Check(Loss, w, Read(dw), "linear dW");
        if (withBias) Check(Loss, bias, Read(db), "linear dbias");
    }

    [Fact]
    public void LinearForwardMatchesDefinition()
    {
        var s = new LinearShape(3, 5, 7);
        var x = Random(15, 14); var w = Random(35, 15); var b = Random(7, 16);
        var y = Filled(21, double.NaN);
        Backend.LinearForward(y, Tensor(x), Tensor(w), Tensor(b), s);
        var expected = new double[21];
        for (int n = 0; n < 3; n++)
        for (int o = 0; o < 7; o++)
        {
            expected[n * 7 + o] = b[o];
            for (int i = 0; i < 5; i++) expected[n * 7 + o] += x[n * 5 + i] * w[o * 5 + i];
        }
        AssertClose(Read(y), expected, "linear forward", 1e-13);
    }

    [Fact]
    public void LinearParameterGradientsAccumulate()
    {
        var s = new LinearShape(3, 5, 7);
        var x = Tensor(Random(15, 17)); var dy = Tensor(Random(21, 18));
        var dw1 = Zeros(35); var db1 = Zeros(7);
        Backend.LinearBackwardWeights(dw1, db1, dy, x, s);
        var priorW = Random(35, 19); var priorB = Random(7, 20);
        var dw2 = Tensor(priorW); var db2 = Tensor(priorB);
        Backend.LinearBackwardWeights(dw2, db2, dy, x, s);
        AssertClose(Read(dw2), Read(dw1).Select((v, i) => v + priorW[i]).ToArray(), "dW +=", 1e-13);
        AssertClose(Read(db2), Read(db1).Select((v, i) => v + priorB[i]).ToArray(), "dbias +=", 1e-13);
    }
}
