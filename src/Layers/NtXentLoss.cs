// NT-Xent (normalized temperature-scaled cross entropy) over z[2N, D], where row i and row (i + N) mod 2N are a
// positive pair: loss = mean over rows of −sᵢₚ + log Σ_{j≠i} exp sᵢⱼ with s = ẑ·ẑᵀ/τ. Forward writes the scalar
// loss into a device tensor (no host sync) and saves each row's log-sum-exp and ‖zᵢ‖; Backward recomputes the
// similarities from them. This layer ends the graph, so its Backward takes the loss gradient (usually 1).
// Distributed mode (data parallelism, Distribute): the loss is over the global batch. Forward all-gathers every
// rank's z [2b, D] rank by rank into a [2B, D] buffer (so the rows are W blocks [view 0; view 1] of b pairs, and
// a row's positive stays in its block: NtXentShape.PairBlock = b), computes this rank's rows against all 2B
// columns (the rows-subset mode), all-gathers the row log-sum-exps, and all-reduces the loss shares, so every rank
// returns the global loss. Backward then computes the FULL gradient of the global loss with respect to this
// rank's rows, including the terms that the other ranks' rows contribute (P_jk needs row j's log-sum-exp, which is
// why it was gathered): no gradient reduce-scatter is needed. Memory stays O(B·D).
// Accumulation rule: dz = (no parameters).
using System.Numerics;
using SimClr.Kernels;
using SimClr.Kernels.Distributed;

namespace SimClr.Layers;

public sealed class NtXentLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private ArenaSlot<T>? _loss, _rowLse, _norms, _dz;
    private Shape _planned;
    private Tensor<T> _z;
    private NtXentShape _shape;
    private ICommunicator? _group;
    private Tensor<T> _gatheredZ, _gatheredLse, _gatheredNorms;

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

    /// <summary>The group whose global batch the loss is taken over, or null (this process's batch).</summary>
    public ICommunicator? Group => _group;

    /// <summary>Elements of the buffers <see cref="Distribute"/> needs for <paramref name="ranks"/> ranks: z, then the log-sum-exps and norms.</summary>
    public (long Z, long Rows) GatheredLengths(int ranks) => ((long)ranks * _planned[0] * _planned[1], (long)ranks * _planned[0]);

    /// <summary>From now on the loss is over the views of every rank of <paramref name="group"/>; the buffers (sized by
    /// <see cref="GatheredLengths"/>, on the backend's device) hold the gathered z, log-sum-exps and norms.</summary>
    public void Distribute(ICommunicator group, Tensor<T> gatheredZ, Tensor<T> gatheredLse, Tensor<T> gatheredNorms)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (_loss is null) throw new InvalidOperationException("NT-Xent: Plan before Distribute");
        var (zLength, rowsLength) = GatheredLengths(group.Size);
        if (gatheredZ.Length != zLength || gatheredLse.Length != rowsLength || gatheredNorms.Length != rowsLength)
            throw new ArgumentException($"NT-Xent over {group.Size} ranks needs gathered buffers of {zLength}, {rowsLength} and {rowsLength} elements");
        _group = group;
        _gatheredZ = gatheredZ;
        _gatheredLse = gatheredLse;
        _gatheredNorms = gatheredNorms;
    }

    /// <summary>The loss as a one-element device tensor (the global loss, the same on every rank, when distributed).</summary>
    public Tensor<T> Forward(Tensor<T> z)
    {
        if (_loss is null) throw new InvalidOperationException("NT-Xent: Plan has not been called");
        int rows = Shapes.CheckBatch("NT-Xent", z.Shape, _planned);
        _z = z;
        var loss = _loss.View;
        if (_group is null)
        {
            _shape = new NtXentShape(rows, z.Shape[1], Temperature);
            _shape.Validate();
            Backend.NtXentForward(loss, _rowLse!.Batch(rows), _norms!.Batch(rows), z, _shape);
            return loss;
        }
        int ranks = _group.Size, dim = z.Shape[1], global = ranks * rows;
        _shape = new NtXentShape(global, dim, Temperature) { RowStart = _group.Rank * rows, RowCount = rows, PairBlock = rows / 2 };
        _shape.Validate();
        var gathered = GatheredZ(global, dim);
        _group.AllGather(gathered, z);
        var lse = _gatheredLse.Slice(0, new Shape(global));
        Backend.NtXentForward(loss, lse, _gatheredNorms.Slice(0, new Shape(global)), gathered, _shape);
        _group.AllGather(lse, lse.Slice(_shape.RowStart, new Shape(rows)));
        _group.AllReduceSum(loss);
        return loss;
    }

    /// <summary>dL/dz scaled by <paramref name="lossGrad"/>, overwritten in this layer's buffer (this rank's rows,
    /// of the global loss, when distributed).</summary>
    public Tensor<T> Backward(double lossGrad = 1.0)
    {
        if (_z.IsEmpty) throw new InvalidOperationException("NT-Xent: Backward before Forward");
        int rows = _shape.RowCount;
        var dz = _dz!.Batch(rows);
        if (_group is null)
            Backend.NtXentBackward(dz, _z, _rowLse!.Batch(rows), _norms!.Batch(rows), _shape, lossGrad);
        else
            Backend.NtXentBackward(dz, GatheredZ(_shape.Rows, _shape.Dim), _gatheredLse.Slice(0, new Shape(_shape.Rows)),
                _gatheredNorms.Slice(0, new Shape(_shape.Rows)), _shape, lossGrad);
        return dz;
    }

    private Tensor<T> GatheredZ(int rows, int dim) => _gatheredZ.Slice(0, new Shape(rows, dim));
}
