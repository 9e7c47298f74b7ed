// Dense ops over cuBLAS: Gemm and the three Linear ops. cuBLAS is column-major; a row-major matrix read as
// column-major is its transpose, so row-major C = op(A)·op(B) is computed as column-major
// Cᵀ = op(B)ᵀ·op(A)ᵀ by swapping the operands. Bias add and bias-gradient reduction use a device vector of
// ones made once at construction (rank-1 update and matrix-vector product), in chunks of its length.
// Accumulation: LinearBackwardWeights adds into dw and dbias (beta = 1); everything else overwrites.
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

public sealed partial class CudaBackend
{
    private const int OnesLength = 1 << 16;

    private CublasHandle _cublas = null!;
    private CudnnHandle _cudnn = null!;
    private CudaStorage<float> _ones = null!;
    private CudaStorage<byte> _cublasWorkspace = null!;
    private const int CublasWorkspaceBytes = 32 << 20;

    /// <summary>cuBLAS version as major.minor.patch.</summary>
    public string CublasVersion { get; private set; } = "";

    /// <summary>cuDNN version as major.minor.patch.</summary>
    public string CudnnVersion { get; private set; } = "";

    private unsafe void InitializeLibraries()
    {
        _cublas = CublasHandle.Create(Context);
        Cublas.Check(Cublas.cublasSetStream_v2(_cublas.DangerousGetHandle(), Stream));
        Cublas.Check(Cublas.cublasSetMathMode(_cublas.DangerousGetHandle(), MathMode == CudaMathMode.Tf32 ? CublasMath.Tf32TensorOp : CublasMath.Default));
        // cuBLAS would otherwise take workspace from its own pool, which a graph capture cannot do;
        // 32 MiB is NVIDIA's recommendation for Hopper (less suffices elsewhere). It must follow SetStream.
        _cublasWorkspace = (CudaStorage<byte>)Allocate<byte>(CublasWorkspaceBytes);
        try
        {
            Cublas.Check(Cublas.cublasSetWorkspace_v2(_cublas.DangerousGetHandle(), (void*)_cublasWorkspace.DevicePointer, CublasWorkspaceBytes));
        }
        catch (EntryPointNotFoundException)
        {
            // An older cuBLAS without cublasSetWorkspace keeps its default pool.
        }
        CublasVersion = CudaInfo.CublasLibraryVersion();

        _cudnn = CudnnHandle.Create(Context);
        Cudnn.Check(Cudnn.cudnnSetStream(_cudnn.DangerousGetHandle(), Stream));
        var (major, minor, patch) = Cudnn.Version();
        CudnnVersion = $"{major}.{minor}.{patch}";

        _ones = (CudaStorage<float>)Allocate<float>(OnesLength);
        Driver.MemsetD32Async(_ones.DevicePointer, BitConverter.SingleToUInt32Bits(1f), OnesLength, Stream);
    }

    private void DisposeLibraries(Action<Action> attempt)
    {
        DisposeDnnPlans(attempt);
        if (_cudnn is not null) attempt(_cudnn.Dispose);
        if (_cublas is not null) attempt(_cublas.Dispose);
    }

    private nint CublasHandleValue => _cublas.DangerousGetHandle();

    public unsafe void Gemm(Tensor<float> c, Tensor<float> a, Tensor<float> b, in GemmShape s)
    {
        if (s.M < 0 || s.N < 0 || s.K < 0) throw new ArgumentException($"invalid GEMM {s}");
        var pc = Floats(c, (long)s.M * s.N);
        var pa = Floats(a, (long)s.M * s.K);
        var pb = Floats(b, (long)s.K * s.N);
        EnsureCurrent();
        RowMajorGemm(pc, pa, pb, s.M, s.N, s.K, s.TransA, s.TransB, (float)s.Alpha, (float)s.Beta);
    }

    public unsafe void LinearForward(Tensor<float> y, Tensor<float> x, Tensor<float> w, Tensor<float> bias, in LinearShape s)
    {
        var py = Floats(y, (long)s.Batch * s.Out);
        var px = Floats(x, (long)s.Batch * s.In);
        var pw = Floats(w, (long)s.Out * s.In);
        float* pbias = bias.IsEmpty ? null : Floats(bias, s.Out);
        EnsureCurrent();
        RowMajorGemm(py, px, pw, s.Batch, s.Out, s.In, Transpose.None, Transpose.Transposed, 1f, 0f);
        if (pbias is null) return;
        // y (column-major [Out, Batch]) += bias · onesᵀ, a rank-1 update per chunk of rows.
        float one = 1f;
        for (int start = 0; start < s.Batch; start += OnesLength)
        {
            int rows = Math.Min(OnesLength, s.Batch - start);
            Cublas.Check(Cublas.cublasSger_v2(CublasHandleValue, s.Out, rows, &one, pbias, 1, (float*)_ones.DevicePointer, 1, py + (long)start * s.Out, s.Out));
        }
    }

    public unsafe void LinearBackwardData(Tensor<float> dx, Tensor<float> dy, Tensor<float> w, in LinearShape s)
    {
        var pdx = Floats(dx, (long)s.Batch * s.In);
        var pdy = Floats(dy, (long)s.Batch * s.Out);
        var pw = Floats(w, (long)s.Out * s.In);
        EnsureCurrent();
        RowMajorGemm(pdx, pdy, pw, s.Batch, s.In, s.Out, Transpose.None, Transpose.None, 1f, 0f);
    }

    public unsafe void LinearBackwardWeights(Tensor<float> dw, Tensor<float> dbias, Tensor<float> dy, Tensor<float> x, in LinearShape s)
    {
        var pdw = Floats(dw, (long)s.Out * s.In);
        float* pdbias = dbias.IsEmpty ? null : Floats(dbias, s.Out);
        var pdy = Floats(dy, (long)s.Batch * s.Out);
        var px = Floats(x, (long)s.Batch * s.In);
        EnsureCurrent();
        RowMajorGemm(pdw, pdy, px, s.Out, s.In, s.Batch, Transpose.Transposed, Transpose.None, 1f, 1f);
        if (pdbias is null) return;
        // dbias += dy (column-major [Out, Batch]) · ones, per chunk of rows.
        float one = 1f;
        for (int start = 0; start < s.Batch; start += OnesLength)
        {
            int rows = Math.Min(OnesLength, s.Batch - start);
            Cublas.Check(Cublas.cublasSgemv_v2(CublasHandleValue, CublasOperation.N, s.Out, rows, &one, pdy + (long)start * s.Out, s.Out,
                (float*)_ones.DevicePointer, 1, &one, pdbias, 1));
        }
    }

    /// <summary>Row-major C[M,N] = alpha·op(A)·op(B) + beta·C as column-major Cᵀ[N,M] = op(B)ᵀ·op(A)ᵀ.</summary>
    private unsafe void RowMajorGemm(float* c, float* a, float* b, int m, int n, int k, Transpose transA, Transpose transB, float alpha, float beta)
    {
        if (m == 0 || n == 0) return;
        // Row-major A is M×K (or K×M when transposed); its leading dimension is its row length.
        int lda = Math.Max(1, transA == Transpose.None ? k : m);
        int ldb = Math.Max(1, transB == Transpose.None ? n : k);
        Cublas.Check(Cublas.cublasSgemm_v2(CublasHandleValue, Op(transB), Op(transA), n, m, k, &alpha, b, ldb, a, lda, &beta, c, n));
    }

    private static CublasOperation Op(Transpose t) => t == Transpose.None ? CublasOperation.N : CublasOperation.T;
}
