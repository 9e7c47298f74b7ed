// Runs kernels/elementwise.cu under host emulation against double references: the element-wise ops on
// aligned and misaligned views (float4 and scalar paths, tails), aliased add, row L2 normalization with a
// zero row, global average pooling and softmax cross-entropy (including an out-of-range label → NaN).
#include "cuda_emu.h"
#include "../../../../kernels/elementwise.cu"
static double maxrel(const float* a, const double* b, size_t n)
{
    return max_rel_error(a, b, n);
}
std::mt19937 rng(11);
std::normal_distribution<float> nd;
std::vector<float> randv(size_t n)
{
    std::vector<float> v(n); // exactly sized: the sanitizer build reports any access past the end
    for (auto& x : v) x = nd(rng);
    return v;
}
void ew(long long n, int off, unsigned grid)
{
    char buf[80];
    auto x = randv(n + off), y = randv(n + off), b = randv(n + off);
    float* X = x.data() + off;
    float* Y = y.data() + off;
    float* B = b.data() + off;
    std::vector<double> r(n);
    auto yv = y;
    launch(fill_f32, {grid}, {256}, yv.data() + off, n, 2.5f);
    for (auto& v : r) v = 2.5;
    snprintf(buf, 80, "fill n=%lld off=%d", n, off);
    report(buf, maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(copy_f32, {grid}, {256}, yv.data() + off, (const float*)X, n);
    for (long long i = 0; i < n; i++) r[i] = X[i];
    snprintf(buf, 80, "copy");
    report(buf, maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(scale_f32, {grid}, {256}, yv.data() + off, n, -1.5f);
    for (long long i = 0; i < n; i++) r[i] = -1.5 * Y[i];
    report("scale", maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(axpy_f32, {grid}, {256}, yv.data() + off, (const float*)X, n, 0.25f);
    for (long long i = 0; i < n; i++) r[i] = Y[i] + 0.25 * X[i];
    report("axpy", maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(add_f32, {grid}, {256}, yv.data() + off, (const float*)X, (const float*)(yv.data() + off), n);
    for (long long i = 0; i < n; i++) r[i] = Y[i] + X[i];
    report("add (aliased)", maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(relu_fwd, {grid}, {256}, yv.data() + off, (const float*)X, n);
    for (long long i = 0; i < n; i++) r[i] = X[i] > 0 ? X[i] : 0;
    report("relu_fwd", maxrel(yv.data() + off, r.data(), n));
    yv = y;
    launch(relu_bwd, {grid}, {256}, yv.data() + off, (const float*)B, (const float*)X, n);
    for (long long i = 0; i < n; i++) r[i] = X[i] > 0 ? B[i] : 0;
    report("relu_bwd", maxrel(yv.data() + off, r.data(), n));
}
void rows(int R, int C, unsigned grid)
{
    char buf[80];
    auto x = randv((size_t)R * C), g = randv((size_t)R * C);
    for (int k = 0; k < C; k++) x[k] = 0;
    std::vector<float> y((size_t)R * C), nrm(R), dx((size_t)R * C), pooled(R), dpool((size_t)R * C);
    std::vector<double> ry((size_t)R * C), rn(R), rdx((size_t)R * C), rp(R), rdp((size_t)R * C);
    double eps = 1e-12;
    for (int i = 0; i < R; i++)
    {
        double q = 0, s = 0;
        for (int k = 0; k < C; k++)
        {
            q += (double)x[i * C + k] * x[i * C + k];
            s += x[i * C + k];
        }
        rn[i] = sqrt(q);
        rp[i] = s / C;
        for (int k = 0; k < C; k++)
        {
            ry[i * C + k] = x[i * C + k] / std::max(rn[i], eps);
            rdp[i * C + k] = (double)g[i] / C;
        }
    }
    launch(l2_normalize_fwd, {grid}, {256}, y.data(), nrm.data(), (const float*)x.data(), R, C, (float)eps);
    snprintf(buf, 80, "l2norm fwd R=%d C=%d y", R, C);
    report(buf, maxrel(y.data(), ry.data(), ry.size()));
    report("l2norm fwd norms", maxrel(nrm.data(), rn.data(), R));
    for (int i = 0; i < R; i++)
    {
        double n = nrm[i];
        if (n > eps)
        {
            double d = 0;
            for (int k = 0; k < C; k++) d += (double)y[i * C + k] * g[i * C + k];
            for (int k = 0; k < C; k++) rdx[i * C + k] = (g[i * C + k] - y[i * C + k] * d) / n;
        }
        else
            for (int k = 0; k < C; k++) rdx[i * C + k] = g[i * C + k] / eps;
    }
    launch(l2_normalize_bwd, {grid}, {256}, dx.data(), (const float*)g.data(), (const float*)y.data(), (const float*)nrm.data(), R, C,
           (float)eps);
    // the zero row's gradient is dy/eps (huge): compare it separately
    report("l2norm bwd zero row", maxrel(dx.data(), rdx.data(), C));
    report("l2norm bwd other rows", maxrel(dx.data() + C, rdx.data() + C, rdx.size() - C));
    launch(global_avg_pool_fwd, {grid}, {256}, pooled.data(), (const float*)x.data(), (long long)R, C);
    report("gap fwd", maxrel(pooled.data(), rp.data(), R));
    launch(global_avg_pool_bwd, {grid}, {256}, dpool.data(), (const float*)g.data(), (long long)R, C);
    report("gap bwd", maxrel(dpool.data(), rdp.data(), rdp.size()));
}
void xent(int B, int C, unsigned grid)
{
    auto x = randv((size_t)B * C);
    for (auto& v : x) v *= 3;
    std::vector<int> lab(B);
    for (int i = 0; i < B; i++) lab[i] = (i * 7 + 3) % C;
    std::vector<float> p((size_t)B * C), terms(1024), loss(1), dl((size_t)B * C);
    std::vector<double> rp((size_t)B * C), rdl((size_t)B * C);
    double rl = 0, lg = 0.6;
    for (int i = 0; i < B; i++)
    {
        double m = -1e300;
        for (int k = 0; k < C; k++) m = std::max(m, (double)x[i * C + k]);
        double s = 0;
        for (int k = 0; k < C; k++) s += exp(x[i * C + k] - m);
        double l = m + log(s);
        for (int k = 0; k < C; k++)
        {
            rp[i * C + k] = exp(x[i * C + k] - l);
            rdl[i * C + k] = lg / B * (rp[i * C + k] - (k == lab[i]));
        }
        rl += l - x[i * C + lab[i]];
    }
    rl /= B;
    launch(softmax_xent_fwd, {grid}, {256}, p.data(), terms.data(), (const float*)x.data(), (const int*)lab.data(), B, C);
    launch(mean_reduce, {1}, {256}, loss.data(), (const float*)terms.data(), (int)grid, (float)(1.0 / B));
    launch(softmax_xent_bwd, {grid}, {256}, dl.data(), (const float*)p.data(), (const int*)lab.data(), B, C, (float)(lg / B));
    char buf[80];
    snprintf(buf, 80, "xent B=%d C=%d probs", B, C);
    report(buf, maxrel(p.data(), rp.data(), rp.size()));
    report("xent loss", std::fabs(loss[0] - rl) / std::max(rl, 1e-3));
    report("xent dlogits", maxrel(dl.data(), rdl.data(), rdl.size()));
    lab[0] = C;
    launch(softmax_xent_fwd, {grid}, {256}, p.data(), terms.data(), (const float*)x.data(), (const int*)lab.data(), B, C);
    launch(mean_reduce, {1}, {256}, loss.data(), (const float*)terms.data(), (int)grid, (float)(1.0 / B));
    report("xent bad label gives NaN", std::isnan(loss[0]) ? 0 : 1);
}
int main()
{
    ew(1, 0, 1);
    ew(1027, 0, 2);
    ew(1027, 1, 2);
    ew(4096, 0, 1);
    ew(13, 3, 3);
    rows(1, 1, 1);
    rows(37, 129, 2);
    rows(9, 16, 1);
    rows(20, 600, 3);
    xent(1, 1, 1);
    xent(37, 10, 2);
    xent(100, 1000, 3);
    return finish();
}
