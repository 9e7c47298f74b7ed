// Runs kernels/syncbn.cu under host emulation as CudaBackend.SyncBatchNorm.cs launches it, for `ranks` ranks that
// each hold a slice of the batch: every rank's syncbn_stats, the sums added over ranks (what the all-reduce does),
// every rank's syncbn_fwd; then syncbn_bwd_reduce, the sums added again, syncbn_bwd. The outputs are checked
// against a double-precision batch norm over the whole batch (CpuBackend.BatchNorm.cs's formulas): y, the saved
// mean and 1/σ, the running statistics (unbiased variance of the whole batch), dx, and dγ, dβ summed over the
// ranks (what the gradient all-reduce does). Covers BatchNorm1d (S = 1), uneven rank slices, S not a multiple of
// the block, several chunks per channel, and a large channel mean (the cancellation double sums must survive).
#include "cuda_emu.h"
#include "../../../../kernels/syncbn.cu"

static void check(int N, int C, int S, int ranks, int chunks, float offset)
{
    std::mt19937 rng(N * 7 + C * 131 + S + ranks);
    std::normal_distribution<float> nd;
    const size_t total = (size_t)N * C * S;
    std::vector<float> x(total), dy(total), gamma(C), beta(C), runMean(C), runVar(C);
    for (auto& v : x) v = offset + nd(rng);
    for (auto& v : dy) v = nd(rng);
    for (int c = 0; c < C; c++) { gamma[c] = 1.0f + 0.3f * nd(rng); beta[c] = 0.2f * nd(rng); runMean[c] = 0.1f * nd(rng); runVar[c] = 1.0f + 0.1f * std::fabs(nd(rng)); }
    const double eps = 1e-5, momentum = 0.1;

    // Double reference over the whole batch.
    const double count = (double)N * S;
    std::vector<double> mean(C), invStd(C), wantY(total), wantDx(total), wantDg(C), wantDb(C), wantRm(C), wantRv(C);
    for (int c = 0; c < C; c++)
    {
        double s = 0, q = 0;
        for (int n = 0; n < N; n++) for (int k = 0; k < S; k++) s += x[((size_t)n * C + c) * S + k];
        mean[c] = s / count;
        for (int n = 0; n < N; n++) for (int k = 0; k < S; k++) { double d = x[((size_t)n * C + c) * S + k] - mean[c]; q += d * d; }
        double var = q / count;
        invStd[c] = 1.0 / std::sqrt(var + eps);
        wantRm[c] = (1 - momentum) * runMean[c] + momentum * mean[c];
        wantRv[c] = (1 - momentum) * runVar[c] + momentum * q / (count - 1);
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < S; k++)
            {
                size_t o = ((size_t)n * C + c) * S + k;
                double xh = (x[o] - mean[c]) * invStd[c];
                wantY[o] = gamma[c] * xh + beta[c];
                sdy += dy[o];
                sdyx += dy[o] * xh;
            }
        wantDg[c] = sdyx;
        wantDb[c] = sdy;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < S; k++)
            {
                size_t o = ((size_t)n * C + c) * S + k;
                double xh = (x[o] - mean[c]) * invStd[c];
                wantDx[o] = gamma[c] * invStd[c] * (dy[o] - sdy / count - xh * sdyx / count);
            }
    }

    // Rank r holds samples [first[r], first[r + 1]): uneven when N is not a multiple of ranks.
    std::vector<int> first(ranks + 1);
    for (int r = 0; r <= ranks; r++) first[r] = (int)((long)N * r / ranks);
    std::vector<float> y(total, 12345.0f), dx(total, 12345.0f), saveMean((size_t)ranks * C), saveInv((size_t)ranks * C);
    std::vector<float> rm((size_t)ranks * C), rv((size_t)ranks * C), dg((size_t)ranks * C, 0.0f), db((size_t)ranks * C, 0.0f);
    std::vector<double> sums((size_t)ranks * (2 * C + 1)), reduced(2 * C + 1);
    auto allReduce = [&]() {
        std::fill(reduced.begin(), reduced.end(), 0.0);
        for (int r = 0; r < ranks; r++)
            for (int i = 0; i < 2 * C + 1; i++) reduced[i] += sums[(size_t)r * (2 * C + 1) + i];
    };
    for (int r = 0; r < ranks; r++)
    {
        std::copy(runMean.begin(), runMean.end(), rm.begin() + (size_t)r * C);
        std::copy(runVar.begin(), runVar.end(), rv.begin() + (size_t)r * C);
    }
    auto at = [&](std::vector<float>& v, int r) { return v.data() + (size_t)first[r] * C * S; };
    auto cat = [&](const std::vector<float>& v, int r) { return (const float*)(v.data() + (size_t)first[r] * C * S); };
    for (int r = 0; r < ranks; r++)
        launch(syncbn_stats, {(unsigned)C}, {256}, sums.data() + (size_t)r * (2 * C + 1), cat(x, r), first[r + 1] - first[r], C, S);
    allReduce();
    for (int r = 0; r < ranks; r++)
        launch(syncbn_fwd, {(unsigned)C, (unsigned)chunks}, {256}, at(y, r), saveMean.data() + (size_t)r * C, saveInv.data() + (size_t)r * C,
            rm.data() + (size_t)r * C, rv.data() + (size_t)r * C, cat(x, r), (const float*)gamma.data(), (const float*)beta.data(), (const double*)reduced.data(),
            first[r + 1] - first[r], C, S, (float)eps, (float)momentum);
    for (int r = 0; r < ranks; r++)
        launch(syncbn_bwd_reduce, {(unsigned)C}, {256}, sums.data() + (size_t)r * (2 * C + 1), dg.data() + (size_t)r * C, db.data() + (size_t)r * C,
            cat(dy, r), cat(x, r), (const float*)saveMean.data() + (size_t)r * C, (const float*)saveInv.data() + (size_t)r * C, first[r + 1] - first[r], C, S);
    allReduce();
    for (int r = 0; r < ranks; r++)
        launch(syncbn_bwd, {(unsigned)C, (unsigned)chunks}, {256}, at(dx, r), cat(dy, r), cat(x, r), (const float*)gamma.data(),
            (const float*)saveMean.data() + (size_t)r * C, (const float*)saveInv.data() + (size_t)r * C, (const double*)reduced.data(), first[r + 1] - first[r], C, S);

    std::vector<float> dgSum(C, 0.0f), dbSum(C, 0.0f);
    for (int r = 0; r < ranks; r++)
        for (int c = 0; c < C; c++) { dgSum[c] += dg[(size_t)r * C + c]; dbSum[c] += db[(size_t)r * C + c]; }

    char name[128];
    snprintf(name, sizeof name, "syncbn N=%d C=%d S=%d ranks=%d chunks=%d offset=%g y", N, C, S, ranks, chunks, offset);
    report(name, max_rel_error(y.data(), wantY.data(), total));
    double worstMean = 0, worstInv = 0, worstRm = 0, worstRv = 0;
    for (int r = 0; r < ranks; r++)
    {
        worstMean = std::max(worstMean, max_rel_error(saveMean.data() + (size_t)r * C, mean.data(), C));
        worstInv = std::max(worstInv, max_rel_error(saveInv.data() + (size_t)r * C, invStd.data(), C));
        worstRm = std::max(worstRm, max_rel_error(rm.data() + (size_t)r * C, wantRm.data(), C));
        worstRv = std::max(worstRv, max_rel_error(rv.data() + (size_t)r * C, wantRv.data(), C));
    }
    report("  save_mean (every rank)", worstMean);
    report("  save_invstd (every rank)", worstInv);
    report("  running_mean", worstRm);
    report("  running_var", worstRv);
    report("  dx", max_rel_error(dx.data(), wantDx.data(), total));
    report("  dgamma (summed over ranks)", max_rel_error(dgSum.data(), wantDg.data(), C));
    report("  dbeta (summed over ranks)", max_rel_error(dbSum.data(), wantDb.data(), C));
}

int main()
{
    check(8, 3, 5, 1, 1, 0.0f);
    check(12, 4, 37, 2, 2, 0.5f);
    check(7, 5, 300, 3, 3, -1.0f);
    check(64, 16, 1, 2, 1, 0.0f);
    check(16, 2, 256, 4, 2, 100.0f);
    return finish();
}
