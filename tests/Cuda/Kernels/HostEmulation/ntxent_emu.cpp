// Runs kernels/ntxent.cu under host emulation and checks norms, row log-sum-exps, the loss and dz
// against a double-precision evaluation of the CPU twin's formulas (CpuBackend.SimClr.cs), launching
// exactly as CudaBackend's NT-Xent launchers do: partial tiles, several column splits, D spanning more
// than one 128-wide slice, odd D, a zero row (norm below eps) and the degenerate 2N = 2.
#include "cuda_emu.h"
#include "../../../../kernels/ntxent.cu"

static void check(int R, int D, double tau, int splitsWanted, bool zeroRow)
{
    std::mt19937 rng(R * 131 + D);
    std::normal_distribution<float> nd;
    std::vector<float> z((size_t)R * D);
    for (auto& v : z) v = nd(rng);
    if (zeroRow) std::fill(z.begin() + D, z.begin() + 2 * D, 0.0f);
    const double eps = 1e-12, lossGrad = 0.7;
    const int N = R / 2;

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
        loss += lse[i] - S[(size_t)i * R + (i + N) % R];
    }
    loss /= R;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) G[(size_t)i * R + j] = (j == i ? 0 : std::exp(S[(size_t)i * R + j] - lse[i])) / R - (j == (i + N) % R ? 1.0 / R : 0);
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

    // The launch sequence of CudaBackend.NtXentForward / NtXentBackward.
    const int rowBlocks = (R + 63) / 64, colTiles = rowBlocks;
    const int tilesPerSplit = (colTiles + std::min(splitsWanted, colTiles) - 1) / std::min(splitsWanted, colTiles);
    const int splits = (colTiles + tilesPerSplit - 1) / tilesPerSplit;
    const int rowGrid = std::min((R + 7) / 8, 1024);
    std::vector<float> norms(R), rowLse(R), state((size_t)splits * R * 2), terms(1024), lossGot(1, -1.0f), dz((size_t)R * D, 12345.0f);
    const float invTau = (float)(1.0 / tau), feps = (float)eps, coef = (float)(lossGrad / (R * tau));
    const float* zc = z.data();
    launch(ntxent_row_norms, {(unsigned)rowGrid}, {256}, norms.data(), zc, R, D);
    launch(ntxent_fwd_tiles, {(unsigned)rowBlocks, (unsigned)splits}, {256}, state.data(), zc, (const float*)norms.data(), R, D, invTau, feps, tilesPerSplit);
    launch(ntxent_fwd_rows, {(unsigned)rowGrid}, {256}, rowLse.data(), terms.data(), (const float*)state.data(), zc, (const float*)norms.data(), R, D, invTau, feps, splits);
    launch(ntxent_loss_reduce, {1}, {256}, lossGot.data(), (const float*)terms.data(), rowGrid, (float)(1.0 / R));
    launch(ntxent_bwd_tiles, {(unsigned)rowBlocks, (unsigned)((D + 127) / 128)}, {256}, dz.data(), zc, (const float*)rowLse.data(), (const float*)norms.data(), R, D, invTau, feps, coef);
    launch(ntxent_bwd_rows, {(unsigned)rowGrid}, {256}, dz.data(), zc, (const float*)norms.data(), R, D, feps, coef);

    char name[96];
    snprintf(name, sizeof name, "ntxent 2N=%d D=%d tau=%.2f splits=%d zero=%d norms", R, D, tau, splits, zeroRow);
    report(name, max_rel_error(norms.data(), nrm.data(), R));
    report("  rowLse", max_rel_error(rowLse.data(), lse.data(), R));
    report("  loss", max_rel_error(lossGot.data(), &loss, 1));
    // With 2N = 2 the gradient cancels to zero exactly; its terms are of size lossGrad/τ.
    report("  dz", max_rel_error(dz.data(), dzWant.data(), dzWant.size(), lossGrad / tau));
}

int main()
{
    check(6, 128, 0.5, 1, false);
    check(2, 5, 0.1, 1, false);
    check(130, 37, 0.2, 1, false);
    check(130, 128, 0.5, 2, true);
    check(200, 129, 0.1, 3, false);
    check(194, 257, 0.5, 4, false);
    return finish();
}
