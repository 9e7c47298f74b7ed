// Dense ops of the CPU backend: GEMM and the linear layer (W stored [Out, In] as in PyTorch). All of
// them reduce to one row-major GEMM routine, CpuGemm<T>.Run, so speed work happens in one place.
// Accumulation rule: dx is overwritten; dw and dbias are added to.
using System.Numerics;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T>
{
    public unsafe void Gemm(Tensor<T> c, Tensor<T> a, Tensor<T> b, in GemmShape s)
    {
        const string op = nameof(Gemm);
        Positive(s.M, "M", op); Positive(s.N, "N", op); Positive(s.K, "K", op);
        Need(c, (long)s.M * s.N, nameof(c), op);
        Need(a, (long)s.M * s.K, nameof(a), op);
        Need(b, (long)s.K * s.N, nameof(b), op);
        int lda = s.TransA == Transpose.None ? s.K : s.M;
        int ldb = s.TransB == Transpose.None ? s.N : s.K;
        CpuGemm<T>.Run(s.M, s.N, s.K, Cast(s.Alpha), (T*)a.Address, lda, s.TransA, (T*)b.Address, ldb, s.TransB,
            Cast(s.Beta), (T*)c.Address, s.N, GemmThreading.Parallel);
    }

    public unsafe void LinearForward(Tensor<T> y, Tensor<T> x, Tensor<T> w, Tensor<T> bias, in LinearShape s)
    {
        const string op = nameof(LinearForward);
        CheckLinear(s, op);
        var ys = Need(y, (long)s.Batch * s.Out, nameof(y), op);
        Need(x, (long)s.Batch * s.In, nameof(x), op);
        Need(w, (long)s.Out * s.In, nameof(w), op);
        var bs = Optional(bias, s.Out, nameof(bias), op);
        T beta = T.Zero;
        if (!bs.IsEmpty)
        {
            for (int r = 0; r < s.Batch; r++) bs.CopyTo(ys.Slice(r * s.Out, s.Out));
            beta = T.One;
        }
        CpuGemm<T>.Run(s.Batch, s.Out, s.In, T.One, (T*)x.Address, s.In, Transpose.None, (T*)w.Address, s.In, Transpose.Transposed,
            beta, (T*)y.Address, s.Out, GemmThreading.Parallel);
    }

    public unsafe void LinearBackwardData(Tensor<T> dx, Tensor<T> dy, Tensor<T> w, in LinearShape s)
    {
        const string op = nameof(LinearBackwardData);
        CheckLinear(s, op);
        Need(dx, (long)s.Batch * s.In, nameof(dx), op);
        Need(dy, (long)s.Batch * s.Out, nameof(dy), op);
        Need(w, (long)s.Out * s.In, nameof(w), op);
        CpuGemm<T>.Run(s.Batch, s.In, s.Out, T.One, (T*)dy.Address, s.Out, Transpose.None, (T*)w.Address, s.In, Transpose.None,
            T.Zero, (T*)dx.Address, s.In, GemmThreading.Parallel);
    }

    public unsafe void LinearBackwardWeights(Tensor<T> dw, Tensor<T> dbias, Tensor<T> dy, Tensor<T> x, in LinearShape s)
    {
        const string op = nameof(LinearBackwardWeights);
        CheckLinear(s, op);
        Need(dw, (long)s.Out * s.In, nameof(dw), op);
        var dys = Need(dy, (long)s.Batch * s.Out, nameof(dy), op);
        Need(x, (long)s.Batch * s.In, nameof(x), op);
        var dbs = Optional(dbias, s.Out, nameof(dbias), op);
        CpuGemm<T>.Run(s.Out, s.In, s.Batch, T.One, (T*)dy.Address, s.Out, Transpose.Transposed, (T*)x.Address, s.In, Transpose.None,
            T.One, (T*)dw.Address, s.In, GemmThreading.Parallel);
        if (dbs.IsEmpty) return;
        for (int o = 0; o < s.Out; o++)
        {
            double sum = 0;
            for (int r = 0; r < s.Batch; r++) sum += Wide(dys[r * s.Out + o]);
            dbs[o] += Cast(sum);
        }
    }

    private static void CheckLinear(in LinearShape s, string op)
    {
        Positive(s.Batch, "Batch", op); Positive(s.In, "In", op); Positive(s.Out, "Out", op);
    }
}
