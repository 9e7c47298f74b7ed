// The one GEMM routine every dense and convolution op of the CPU backend reduces to: row-major
// C[M,N] = alpha·op(A)·op(B) + beta·C with leading dimensions. As in BLAS, beta = 0 means C is not
// read, so garbage (even NaN) in C is overwritten.
using System.Numerics;

namespace SimClr.Kernels.Cpu;

/// <summary>Whether a GEMM may spread over threads (no when the caller already runs one per thread).</summary>
internal enum GemmThreading { Serial, Parallel }

internal static unsafe class CpuGemm<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>C = alpha·op(A)·op(B) + beta·C. op(A)(i,p) is a[i·lda+p], or a[p·lda+i] when transposed;
    /// op(B)(p,j) is b[p·ldb+j], or b[j·ldb+p] when transposed.</summary>
    public static void Run(int m, int n, int k, T alpha, T* a, int lda, Transpose transA, T* b, int ldb, Transpose transB,
        T beta, T* c, int ldc, GemmThreading threading)
    {
        nint ap = (nint)a, bp = (nint)b, cp = (nint)c;
        bool ta = transA == Transpose.Transposed, tb = transB == Transpose.Transposed;
        void Row(int i)
        {
            T* A = (T*)ap, B = (T*)bp, C = (T*)cp + (long)i * ldc;
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int p = 0; p < k; p++)
                {
                    T av = ta ? A[(long)p * lda + i] : A[(long)i * lda + p];
                    T bv = tb ? B[(long)j * ldb + p] : B[(long)p * ldb + j];
                    sum += av * bv;
                }
                C[j] = beta == T.Zero ? alpha * sum : alpha * sum + beta * C[j];
            }
        }
        if (threading == GemmThreading.Parallel && (long)m * n * k > 1 << 15) Parallel.For(0, m, Row);
        else for (int i = 0; i < m; i++) Row(i);
    }
}
