// Runs kernels/ntxent.cu under host emulation and checks norms, row log-sum-exps, the loss and dz
// against a double-precision evaluation of the CPU twin's formulas (CpuBackend.SimClr.cs), launching
// exactly as CudaBackend's NT-Xent launchers do: partial tiles, several column splits, D spanning more
// than one 128-wide slice, odd D, a zero row (norm below eps) and the degenerate 2N = 2. With ranks > 1
// the rows-subset mode of data parallelism: the rows are `ranks` blocks [view 0; view 1] of P pairs each
// (positive i ± P inside the block), every rank launches for its own 2P rows against all columns, the
// ranks' rowLse ranges together are the all-gathered rowLse the backward reads, and their loss shares sum
// to the loss. Subset row ranges start mid-tile (2P is not a multiple of 64) in some cases.
#include "cuda_emu.h"
#include "../../../../kernels/ntxent.cu"

static void check(int R, int D, double tau, int splitsWanted, bool zeroRow, int ranks)
{
    std::mt19937 rng(R * 131 + D + (ranks - 1) * 7919);
    std::normal_distribution<float> nd;
    std::vector<float> z((size_t)R * D);
    for (auto& v : z) v = nd(rng);
    if (zeroRow) std::fill(z.begin() + D, z.begin() + 2 * D, 0.0f);
    const double eps = 1e-12, lossGrad = 0.7;
    const int P = R / (2 * ranks);
    auto positive = [P](int i) { return i % (2 * P) < P ? i + P : i - P; };

    std::vector<double> zh((size_t)R * D), nrm(R), lse(R), S((size_t)R * R), G((size_t)R * R), dzWant((size_t)R * D);
    for (int i = 0; i < R; i++)
    {
        double q = 0;
        for (int k = 0; k < D; k++) q += (double)z[i * D + k] * z[i * D + k];
        nrm[i] = std::sqrt(q);
        for (int k = 0; k < D; k++) zh[i * D + k] = z[i * D + k] / std::max(nrm[i], eps);
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++)
        {
            double d = 0;
            for (int k = 0; k < D; k++) d += zh[i * D + k] * zh[j * D + k];
            S[(size_t)i * R + j] = d / tau;
        }
    double loss = 0;
    for (int i = 0; i < R; i++)
    {
        double m = -1e300, s = 0;
        for (int j = 0; j < R; j++) if (j != i) m = std::max(m, S[(size_t)i * R + j]);
        for (int j = 0; j < R; j++) if (j != i) s += std::exp(S[(size_t)i * R + j] - m);
        lse[i] = m + std::log(s);
        loss += lse[i] - S[(size_t)i * R + positive(i)];
    }
    loss /= R;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) G[(size_t)i * R + j] = (j == i ? 0 : std::exp(S[(size_t)i * R + j] - lse[i])) / R - (j == positive(i) ? 1.0 / R : 0);
    for (int i = 0; i < R; i++)
    {
        std::vector<double> g(D, 0.0);
        for (int j = 0; j < R; j++)
        {
            double w = G[(size_t)i * R + j] + G[(size_t)j * R + i];
            for (int k = 0; k < D; k++) g[k] += w * zh[j * D + k];
        }
        double sc = lossGrad / tau, dot = 0;
        for (int k = 0; k < D; k++) dot += zh[i * D + k] * g[k];
        for (int k = 0; k < D; k++)
            dzWant[i * D + k] = nrm[i] > eps ? sc / nrm[i] * (g[k] - zh[i * D + k] * dot) : sc * g[k] / eps;
    }

    // The launch sequence of CudaBackend.NtXentForward / NtXentBackward, once per rank over its own rows. Every
    // rank's launches read the same (all-gathered) z; the forwards write disjoint ranges of rowLse, which is then
    // what the all-gather would leave on every rank.
    const int rowCount = 2 * P, colTiles = (R + 63) / 64, rowBlocks = (rowCount + 63) / 64;
    const int tilesPerSplit = (colTiles + std::min(splitsWanted, colTiles) - 1) / std::min(splitsWanted, colTiles);
    const int splits = (colTiles + tilesPerSplit - 1) / tilesPerSplit;
    const int rowGrid = std::min((rowCount + 7) / 8, 1024);
    std::vector<float> norms(R), rowLse(R), state((size_t)splits * rowCount * 2), terms(1024), dz((size_t)R * D, 12345.0f);
    double lossGot = 0;
    const float invTau = (float)(1.0 / tau), feps = (float)eps, coef = (float)(lossGrad / (R * tau));
    const float* zc = z.data();
    for (int rank = 0; rank < ranks; rank++)
    {
        const int rowStart = rank * rowCount;
        std::vector<float> share(1, -1.0f);
        launch(ntxent_row_norms, {(unsigned)std::min((R + 7) / 8, 1024)}, {256}, norms.data(), zc, R, D);
        launch(ntxent_fwd_tiles, {(unsigned)rowBlocks, (unsigned)splits}, {256}, state.data(), zc, (const float*)norms.data(), R, D, invTau, feps, tilesPerSplit, rowStart, rowCount);
        launch(ntxent_fwd_rows, {(unsigned)rowGrid}, {256}, rowLse.data(), terms.data(), (const float*)state.data(), zc, (const float*)norms.data(), D, invTau, feps, splits, rowStart, rowCount, P);
        launch(ntxent_loss_reduce, {1}, {256}, share.data(), (const float*)terms.data(), rowGrid, (float)(1.0 / R));
        lossGot += share[0];
    }
    for (int rank = 0; rank < ranks; rank++)
    {
        const int rowStart = rank * rowCount;
        float* dzRank = dz.data() + (size_t)rowStart * D;
        launch(ntxent_bwd_tiles, {(unsigned)rowBlocks, (unsigned)((D + 127) / 128)}, {256}, dzRank, zc, (const float*)rowLse.data(), (const float*)norms.data(), R, D, invTau, feps, coef, rowStart, rowCount);
        launch(ntxent_bwd_rows, {(unsigned)rowGrid}, {256}, dzRank, zc, (const float*)norms.data(), D, feps, coef, rowStart, rowCount, P);
    }

    char name[128];
    snprintf(name, sizeof name, "ntxent 2N=%d D=%d tau=%.2f splits=%d zero=%d ranks=%d norms", R, D, tau, splits, zeroRow, ranks);
    report(name, max_rel_error(norms.data(), nrm.data(), R));
    report("  rowLse", max_rel_error(rowLse.data(), lse.data(), R));
    float lossFloat = (float)lossGot;
    report("  loss", max_rel_error(&lossFloat, &loss, 1));
    // With 2N = 2 the gradient cancels to zero exactly; its terms are of size lossGrad/τ.
    report("  dz", max_rel_error(dz.data(), dzWant.data(), dzWant.size(), lossGrad / tau));
}

int main()
{
    check(6, 128, 0.5, 1, false, 1);
    check(2, 5, 0.1, 1, false, 1);
    check(130, 37, 0.2, 1, false, 1);
    check(130, 128, 0.5, 2, true, 1);
    check(200, 129, 0.1, 3, false, 1);
    check(194, 257, 0.5, 4, false, 1);
    // Rows-subset mode: 2 ranks of 2P = 100 rows (the second range starts inside a column tile), 4 ranks of
    // 2P = 64 (tile-aligned) over two D slices, 8 ranks of 2P = 2 (a pair per rank), and a zero row.
    check(200, 37, 0.2, 2, false, 2);
    check(256, 160, 0.5, 3, true, 4);
    check(16, 9, 0.1, 1, false, 8);
    return finish();
}
