// Runs kernels/cosine.cu and kernels/lars.cu under host emulation against double references: cosine
// similarity with partial tiles, a zero row and D of 1..512; LARS with every flag combination, a zero-norm
// segment, zero gradients, an empty segment, float4 and scalar paths (misaligned offsets), several chunk
// counts and the re-armed ticket counters; SGD with classic and Nesterov momentum.
#include "cuda_emu.h"
#include "../../../../kernels/cosine.cu"
#include "../../../../kernels/lars.cu"
static double maxrel(const float* a, const double* b, size_t n)
{
    return max_rel_error(a, b, n);
}
std::mt19937 rng(7);
std::normal_distribution<float> nd;
void cosine(int M, int N, int D)
{
    std::vector<float> a((size_t)M * D), b((size_t)N * D), s((size_t)M * N, 99.f);
    for (auto& v : a) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    for (int k = 0; k < D; k++) a[k] = 0; // zero row: divided by eps
    std::vector<double> ref((size_t)M * N);
    auto norm = [&](const float* r)
    {
        double q = 0;
        for (int k = 0; k < D; k++) q += (double)r[k] * r[k];
        return std::max(sqrt(q), 1e-12);
    };
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
        {
            double d = 0;
            for (int k = 0; k < D; k++) d += (double)a[i * D + k] * b[j * D + k];
            ref[i * N + j] = d / norm(&a[i * D]) / norm(&b[j * D]);
        }
    launch(cosine_similarity, {(unsigned)((N + 63) / 64), (unsigned)((M + 63) / 64)}, {256}, s.data(), (const float*)a.data(),
           (const float*)b.data(), M, N, D, 1e-12f);
    char buf[64];
    snprintf(buf, 64, "cosine M=%d N=%d D=%d", M, N, D);
    report(buf, maxrel(s.data(), ref.data(), ref.size()));
}
struct Seg
{
    long long off, len;
    int flags, pad;
};
void lars(int chunks, bool misalign)
{
    // segments: all flag combinations, one zero-norm segment, lengths with tails, one empty
    std::vector<Seg> segs = {{0, 1000, 0, 0},  {1000, 37, 1, 0}, {1037, 3, 2, 0},   {1040, 517, 3, 0},
                             {1557, 64, 0, 0}, {1621, 0, 0, 0},  {1621, 2050, 0, 0}};
    long long total = 3671 + 5;
    int off0 = misalign ? 1 : 0;
    for (auto& s : segs) s.off += off0;
    std::vector<float> w(total), v(total), g(total);
    for (auto& x : w) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    for (auto& x : g) x = nd(rng) * 0.01f;
    for (long long i = 1557 + off0; i < 1621 + off0; i++) w[i] = 0; // zero-norm weights
    for (long long i = 1621 + off0; i < 3671 + off0; i++) g[i] = 0; // zero grads and wd*w != 0 (g' nonzero)
    double lr = 0.3, m = 0.9, wd = 1e-4, eta = 1e-3;
    std::vector<double> W(w.begin(), w.end()), V(v.begin(), v.end()), ns(2 * segs.size());
    for (size_t k = 0; k < segs.size(); k++)
    {
        auto s = segs[k];
        double wdk = (s.flags & 1) ? 0 : wd;
        double a = 0, b = 0;
        for (long long i = s.off; i < s.off + s.len; i++)
        {
            double gi = g[i] + wdk * w[i];
            a += (double)w[i] * w[i];
            b += gi * gi;
        }
        a = sqrt(a);
        b = sqrt(b);
        ns[2 * k] = a;
        ns[2 * k + 1] = b;
        double tr = ((s.flags & 2) || !(a > 0 && b > 0)) ? 1 : eta * a / b;
        for (long long i = s.off; i < s.off + s.len; i++)
        {
            double gi = g[i] + wdk * w[i];
            V[i] = m * v[i] + lr * tr * gi;
            W[i] = w[i] - V[i];
        }
    }
    std::vector<float> nsd(2 * segs.size(), -1), part(segs.size() * chunks * 2 * 2);
    std::vector<unsigned> ctr(segs.size(), 0);
    launch(lars_norms, {(unsigned)chunks, (unsigned)segs.size()}, {256}, nsd.data(), (double*)part.data(), ctr.data(),
           (const float*)w.data(), (const float*)g.data(), (const ParamSegment*)segs.data(), chunks, (float)wd);
    launch(lars_update, {(unsigned)chunks, (unsigned)segs.size()}, {256}, w.data(), v.data(), (const float*)g.data(),
           (const ParamSegment*)segs.data(), (const float*)nsd.data(), chunks, (float)lr, (float)m, (float)wd, (float)eta);
    unsigned c = 0;
    for (auto x : ctr) c += x;
    char buf[64];
    snprintf(buf, 64, "lars chunks=%d misalign=%d norms", chunks, misalign);
    report(buf, maxrel(nsd.data(), ns.data(), ns.size()));
    snprintf(buf, 64, "lars chunks=%d misalign=%d w", chunks, misalign);
    report(buf, maxrel(w.data(), W.data(), W.size()));
    snprintf(buf, 64, "lars chunks=%d misalign=%d v", chunks, misalign);
    report(buf, maxrel(v.data(), V.data(), V.size()));
    snprintf(buf, 64, "lars counters re-armed");
    report(buf, c);
}
void sgd(int chunks, int nesterov)
{
    std::vector<Seg> segs = {{0, 1001, 0, 0}, {1001, 37, 1, 0}, {1040, 515, 0, 0}};
    long long total = 1555 + 3;
    std::vector<float> w(total), v(total), g(total);
    for (auto& x : w) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    for (auto& x : g) x = nd(rng);
    double lr = 0.1, m = 0.9, wd = 5e-4;
    std::vector<double> W(w.begin(), w.end()), V(v.begin(), v.end());
    for (auto s : segs)
    {
        double wdk = (s.flags & 1) ? 0 : wd;
        for (long long i = s.off; i < s.off + s.len; i++)
        {
            double gi = g[i] + wdk * w[i];
            V[i] = m * v[i] + gi;
            W[i] = nesterov ? w[i] - lr * (gi + m * V[i]) : w[i] - lr * V[i];
        }
    }
    launch(sgd_update, {(unsigned)chunks, (unsigned)segs.size()}, {256}, w.data(), v.data(), (const float*)g.data(),
           (const ParamSegment*)segs.data(), chunks, (float)lr, (float)m, (float)wd, nesterov);
    char buf[64];
    snprintf(buf, 64, "sgd chunks=%d nesterov=%d w", chunks, nesterov);
    report(buf, maxrel(w.data(), W.data(), W.size()));
    snprintf(buf, 64, "sgd chunks=%d nesterov=%d v", chunks, nesterov);
    report(buf, maxrel(v.data(), V.data(), V.size()));
}
int main()
{
    cosine(1, 1, 1);
    cosine(70, 130, 33);
    cosine(64, 64, 16);
    cosine(5, 200, 512);
    lars(1, false);
    lars(3, false);
    lars(3, true);
    lars(2, false);
    sgd(1, 0);
    sgd(2, 1);
    sgd(3, 0);
    return finish();
}
