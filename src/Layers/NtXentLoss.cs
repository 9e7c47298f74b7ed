// NT-Xent (normalized temperature-scaled cross entropy) over z[2N, D], where row i and row (i + N) mod 2N are a
// positive pair: loss = mean over rows of −sᵢₚ + log Σ_{j≠i} exp sᵢⱼ with s = ẑ·ẑᵀ/τ. Forward writes the scalar
// loss into a device tensor (no host sync) and saves each row's log-sum-exp and ‖zᵢ‖; Backward recomputes the
// similarities from them. This layer ends the graph, so its Backward takes the loss gradient (usually 1).
// Accumulation rule: dz = (no parameters).
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Layers;

public sealed class NtXentLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _loss, _rowLse, _norms, _dz;
    private Shape _planned;
    private Tensor<T> _z;
    private NtXentShape _shape;

    public NtXentLoss(IBackend<T> backend, double temperature)
    {
        ArgumentNullException.ThrowIfNull(backend);
        new NtXentShape(2, 1, temperature).Validate();
        Backend = backend;
        Temperature = temperature;
    }

    public IBackend<T> Backend { get; }
    public double Temperature { get; }

    /// <summary>Where Backward writes dz; the layer before extends it to its own ticks.</summary>
    public ArenaSlot<T>? GradientSlot => _dz;

    public void Plan(ActivationArena<T> arena, Shape z)
    {
        if (z.Rank != 2) throw new ArgumentException($"NT-Xent expects z [2N, D], got {z}");
        new NtXentShape(z[0], z[1], Temperature).Validate();
        _planned = z;
        _loss = arena.Reserve("ntxent.loss", new Shape(1));
        _rowLse = arena.Reserve("ntxent.row_lse", new Shape(z[0]));
        _norms = arena.Reserve("ntxent.norms", new Shape(z[0]));
        _dz = arena.ReserveGradient("ntxent.dz", z, Layout.RowMajor, arena.NextTick());
    }

    /// <summary>The loss as a one-element device tensor.</summary>
    public Tensor<T> Forward(Tensor<T> z)
    {
        if (_loss is null) throw new InvalidOperationException("NT-Xent: Plan has not been called");
        int rows = Shapes.CheckBatch("NT-Xent", z.Shape, _planned);
        _shape = new NtXentShape(rows, z.Shape[1], Temperature);
        _shape.Validate();
        _z = z;
        var loss = _loss.View;
        Backend.NtXentForward(loss, _rowLse!.Batch(rows), _norms!.Batch(rows), z, _shape);
        return loss;
    }

    /// <summary>dL/dz scaled by <paramref name="lossGrad"/>, overwritten in this layer's buffer.</summary>
    public Tensor<T> Backward(double lossGrad = 1.0)
    {
        if (_z.IsEmpty) throw new InvalidOperationException("NT-Xent: Backward before Forward");
        int rows = _shape.Rows;
        var dz = _dz!.Batch(rows);
        Backend.NtXentBackward(dz, _z, _rowLse!.Batch(rows), _norms!.Batch(rows), _shape, lossGrad);
        return dz;
    }
}
