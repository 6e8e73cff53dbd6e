// blaslt.cpp: the emulated cuBLASLt (libcublasLt.so.12): descriptors, the heuristic, and cublasLtMatmul with
// transposes, row/column order, leading dimensions, batches and the bias/ReLU/GELU epilogues honoured.
// Attribute values are cublasLt.h's.
#include <cstring>

#include "blas_common.h"

namespace tome_emu {

namespace {

struct LtHandle {};

struct MatmulDesc {
    int compute_type = kCompute32F, scale_type = kR32F, pointer_mode = 0;
    int trans_a = 0, trans_b = 0, trans_c = 0;
    unsigned int epilogue = 1;   // CUBLASLT_EPILOGUE_DEFAULT
    unsigned long long bias = 0;
    long long bias_batch_stride = 0;
    int bias_type = -1;          // default: the type of D
};

struct Layout {
    unsigned int type = kR32F;
    int order = 0;   // CUBLASLT_ORDER_COL 0, CUBLASLT_ORDER_ROW 1
    unsigned long long rows = 0, cols = 0;
    long long ld = 0;
    int batch = 1;
    long long batch_stride = 0;
};

struct Preference {
    unsigned int search_mode = 0;
    unsigned long long max_workspace = 0;
};

HandleSet<LtHandle> lt_handles;
HandleSet<MatmulDesc> descs;
HandleSet<Layout> layouts;
HandleSet<Preference> preferences;

constexpr unsigned long long kAlgoMagic = 0x746f6d65656d75ull;   // marks an algo this emulator's heuristic returned

// Copies an attribute value of exactly `expected` bytes.
template <typename T>
bool Set(T& field, const void* buf, size_t size)
{
    if (buf == nullptr || size != sizeof(T))
        return false;
    std::memcpy(&field, buf, sizeof(T));
    return true;
}

// The product D = op(A)·op(B) the descriptors describe, or why they do not fit together.
int Describe(const MatmulDesc& desc, const Layout& a, const Layout& b, const Layout& c, const Layout& d, GemmProblem* g)
{
    auto rows = [](const Layout& l, bool t) { return (int64_t)(t ? l.cols : l.rows); };
    auto cols = [](const Layout& l, bool t) { return (int64_t)(t ? l.rows : l.cols); };
    const bool ta = desc.trans_a != 0, tb = desc.trans_b != 0;
    g->m = rows(a, ta);
    g->k = cols(a, ta);
    g->n = cols(b, tb);
    g->batch = d.batch;
    if (rows(b, tb) != g->k || (int64_t)d.rows != g->m || (int64_t)d.cols != g->n || c.rows != d.rows || c.cols != d.cols)
        return BlasReport(kBlasInvalidValue, Format("cublasLtMatmul: op(A) is %lld×%lld, op(B) %lld×%lld, C %llu×%llu and D %llu×%llu",
                                                    (long long)rows(a, ta), (long long)cols(a, ta), (long long)rows(b, tb),
                                                    (long long)cols(b, tb), c.rows, c.cols, d.rows, d.cols));
    if (a.batch != d.batch || b.batch != d.batch || c.batch != d.batch)
        return BlasReport(kBlasInvalidValue, "cublasLtMatmul: A, B, C and D must have the same batch count");
    for (const Layout* l : {&a, &b, &c, &d}) {
        const unsigned long long minimum = l->order == 0 ? l->rows : l->cols;
        if ((l->order != 0 && l->order != 1) || l->ld < (long long)std::max(1ull, minimum))
            return BlasReport(kBlasInvalidValue, Format("cublasLtMatmul: a layout of %llu×%llu with order %d and ld %lld", l->rows, l->cols,
                                                        l->order, l->ld));
    }
    Element ea, eb, ec, ed;
    InputRounding rounding;
    if (!ElementOf((int)a.type, &ea) || !ElementOf((int)b.type, &eb) || !ElementOf((int)c.type, &ec) || !ElementOf((int)d.type, &ed) ||
        ea != eb || ec != ed || desc.scale_type != kR32F || !RoundingOf(desc.compute_type, false, &rounding) || desc.trans_c != 0)
        return BlasReport(kBlasNotSupported, "cublasLtMatmul: this combination of types, compute type and transC is not emulated");
    const unsigned int epilogue = desc.epilogue;
    if (epilogue != 1 && epilogue != 2 && epilogue != 4 && epilogue != 6 && epilogue != 32 && epilogue != 36)
        return BlasReport(kBlasNotSupported, Format("cublasLtMatmul: epilogue %u is not emulated", epilogue));
    g->a = MatrixArg{nullptr, ea, ta, a.ld, a.batch_stride, a.order == 1};
    g->b = MatrixArg{nullptr, eb, tb, b.ld, b.batch_stride, b.order == 1};
    g->c = MatrixArg{nullptr, ec, false, c.ld, c.batch_stride, c.order == 1};
    g->d = MatrixArg{nullptr, ed, false, d.ld, d.batch_stride, d.order == 1};
    g->rounding = rounding;
    g->activation = (epilogue & 2u) ? Activation::Relu : (epilogue & 32u) ? Activation::GeluTanh : Activation::None;
    if (epilogue & 4u) {
        Element bias_type = ed;
        if (desc.bias_type >= 0 && !ElementOf(desc.bias_type, &bias_type))
            return BlasReport(kBlasNotSupported, Format("cublasLtMatmul: bias type %d is not emulated", desc.bias_type));
        g->bias_type = bias_type;
        g->bias_batch_stride = desc.bias_batch_stride;
    }
    return kBlasSuccess;
}

}  // namespace

}  // namespace tome_emu

using namespace tome_emu;

TOME_EMU_EXPORT int cublasLtGetProperty(int type, int* value)
{
    if (value == nullptr || type < 0 || type > 2)
        return BlasReport(kBlasInvalidValue, "cublasLtGetProperty: unknown libraryPropertyType");
    *value = type == 0 ? 12 : 0;
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtCreate(void** handle)
{
    if (Status status = Ready(false, "cublasLtCreate"); !status.ok())
        return BlasReport(kBlasNotInitialized, status.detail);
    *handle = lt_handles.Add(new LtHandle());
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtDestroy(void* handle) { return lt_handles.Remove(handle) ? kBlasSuccess : kBlasNotInitialized; }

TOME_EMU_EXPORT int cublasLtMatmulDescCreate(void** desc, int compute_type, int scale_type)
{
    auto* created = new MatmulDesc();
    created->compute_type = compute_type;
    created->scale_type = scale_type;
    *desc = descs.Add(created);
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtMatmulDescDestroy(void* desc) { return descs.Remove(desc) ? kBlasSuccess : kBlasInvalidValue; }

TOME_EMU_EXPORT int cublasLtMatmulDescSetAttribute(void* handle, int attribute, const void* buf, size_t size)
{
    if (!descs.Has(handle))
        return BlasReport(kBlasInvalidValue, "cublasLtMatmulDescSetAttribute: not a live descriptor");
    auto& d = *static_cast<MatmulDesc*>(handle);
    bool ok = false;
    switch (attribute) {
    case 0: ok = Set(d.compute_type, buf, size); break;          // COMPUTE_TYPE
    case 1: ok = Set(d.scale_type, buf, size); break;            // SCALE_TYPE
    case 2: ok = Set(d.pointer_mode, buf, size) && d.pointer_mode == 0; break;   // POINTER_MODE (host only)
    case 3: ok = Set(d.trans_a, buf, size); break;               // TRANSA
    case 4: ok = Set(d.trans_b, buf, size); break;               // TRANSB
    case 5: ok = Set(d.trans_c, buf, size); break;               // TRANSC
    case 7: ok = Set(d.epilogue, buf, size); break;              // EPILOGUE
    case 8: ok = Set(d.bias, buf, size); break;                  // BIAS_POINTER
    case 10: ok = Set(d.bias_batch_stride, buf, size); break;    // BIAS_BATCH_STRIDE
    case 26: ok = Set(d.bias_type, buf, size); break;            // BIAS_DATA_TYPE
    default:
        return BlasReport(kBlasNotSupported, Format("cublasLtMatmulDescSetAttribute: attribute %d is not emulated", attribute));
    }
    return ok ? kBlasSuccess : BlasReport(kBlasInvalidValue, Format("cublasLtMatmulDescSetAttribute: attribute %d with %zu bytes", attribute, size));
}

TOME_EMU_EXPORT int cublasLtMatrixLayoutCreate(void** layout, int type, unsigned long long rows, unsigned long long cols, long long ld)
{
    auto* created = new Layout();
    created->type = (unsigned int)type;
    created->rows = rows;
    created->cols = cols;
    created->ld = ld;
    *layout = layouts.Add(created);
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtMatrixLayoutDestroy(void* layout) { return layouts.Remove(layout) ? kBlasSuccess : kBlasInvalidValue; }

TOME_EMU_EXPORT int cublasLtMatrixLayoutSetAttribute(void* handle, int attribute, const void* buf, size_t size)
{
    if (!layouts.Has(handle))
        return BlasReport(kBlasInvalidValue, "cublasLtMatrixLayoutSetAttribute: not a live layout");
    auto& l = *static_cast<Layout*>(handle);
    bool ok = false;
    switch (attribute) {
    case 0: ok = Set(l.type, buf, size); break;
    case 1: ok = Set(l.order, buf, size); break;
    case 2: ok = Set(l.rows, buf, size); break;
    case 3: ok = Set(l.cols, buf, size); break;
    case 4: ok = Set(l.ld, buf, size); break;
    case 5: ok = Set(l.batch, buf, size); break;
    case 6: ok = Set(l.batch_stride, buf, size); break;
    default: return BlasReport(kBlasNotSupported, Format("cublasLtMatrixLayoutSetAttribute: attribute %d is not emulated", attribute));
    }
    return ok ? kBlasSuccess : BlasReport(kBlasInvalidValue, Format("cublasLtMatrixLayoutSetAttribute: attribute %d with %zu bytes", attribute, size));
}

TOME_EMU_EXPORT int cublasLtMatmulPreferenceCreate(void** preference)
{
    *preference = preferences.Add(new Preference());
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtMatmulPreferenceDestroy(void* preference) { return preferences.Remove(preference) ? kBlasSuccess : kBlasInvalidValue; }

TOME_EMU_EXPORT int cublasLtMatmulPreferenceSetAttribute(void* handle, int attribute, const void* buf, size_t size)
{
    if (!preferences.Has(handle))
        return BlasReport(kBlasInvalidValue, "cublasLtMatmulPreferenceSetAttribute: not a live preference");
    auto& p = *static_cast<Preference*>(handle);
    const bool ok = attribute == 0 ? Set(p.search_mode, buf, size) : attribute == 1 ? Set(p.max_workspace, buf, size) : false;
    return ok ? kBlasSuccess : BlasReport(kBlasInvalidValue, Format("cublasLtMatmulPreferenceSetAttribute: attribute %d with %zu bytes", attribute, size));
}

// cublasLtMatmulHeuristicResult_t: algo (8 words), workspaceSize, state, wavesCount, reserved[4].
struct HeuristicResult {
    unsigned long long algo[8];
    size_t workspace_size;
    int state;
    float waves_count;
    int reserved[4];
};

TOME_EMU_EXPORT int cublasLtMatmulAlgoGetHeuristic(void* handle, void* desc, void* a, void* b, void* c, void* d, void* preference,
                                                   int requested, HeuristicResult* results, int* returned)
{
    if (!lt_handles.Has(handle) || !descs.Has(desc) || !layouts.Has(a) || !layouts.Has(b) || !layouts.Has(c) || !layouts.Has(d) ||
        !preferences.Has(preference) || requested <= 0 || results == nullptr || returned == nullptr)
        return BlasReport(kBlasInvalidValue, "cublasLtMatmulAlgoGetHeuristic: a handle, descriptor or count is invalid");
    GemmProblem g;
    const int described = Describe(*static_cast<MatmulDesc*>(desc), *static_cast<Layout*>(a), *static_cast<Layout*>(b),
                                   *static_cast<Layout*>(c), *static_cast<Layout*>(d), &g);
    if (described != kBlasSuccess)
        return described;
    std::memset(results, 0, sizeof(HeuristicResult) * (size_t)requested);
    results[0].algo[0] = kAlgoMagic;
    results[0].state = kBlasSuccess;
    results[0].waves_count = 1.0f;
    *returned = 1;
    return kBlasSuccess;
}

TOME_EMU_EXPORT int cublasLtMatmul(void* handle, void* desc, const void* alpha, const void* a, void* a_desc, const void* b, void* b_desc,
                                   const void* beta, const void* c, void* c_desc, void* d, void* d_desc, const unsigned long long* algo,
                                   void* workspace, size_t workspace_bytes, void* stream)
{
    if (!lt_handles.Has(handle) || !descs.Has(desc) || !layouts.Has(a_desc) || !layouts.Has(b_desc) || !layouts.Has(c_desc) ||
        !layouts.Has(d_desc) || alpha == nullptr || beta == nullptr)
        return BlasReport(kBlasInvalidValue, "cublasLtMatmul: a handle, descriptor, alpha or beta is invalid");
    if (algo != nullptr && algo[0] != kAlgoMagic)
        return BlasReport(kBlasInvalidValue, "cublasLtMatmul: the algo did not come from cublasLtMatmulAlgoGetHeuristic");
    const auto& matmul = *static_cast<MatmulDesc*>(desc);
    GemmProblem g;
    const int described = Describe(matmul, *static_cast<Layout*>(a_desc), *static_cast<Layout*>(b_desc), *static_cast<Layout*>(c_desc),
                                   *static_cast<Layout*>(d_desc), &g);
    if (described != kBlasSuccess)
        return described;
    g.api = Format("cublasLtMatmul(m %lld, n %lld, k %lld, epilogue %u)", (long long)g.m, (long long)g.n, (long long)g.k, matmul.epilogue);
    g.a.data = a;
    g.b.data = b;
    g.c.data = c;
    g.d.data = d;
    g.alpha = *static_cast<const float*>(alpha);
    g.beta = *static_cast<const float*>(beta);
    g.workspace = workspace_bytes > 0 ? workspace : nullptr;
    if (matmul.epilogue & 4u) {
        if (matmul.bias == 0)
            return BlasReport(kBlasInvalidValue, g.api + ": a bias epilogue without CUBLASLT_MATMUL_DESC_BIAS_POINTER");
        g.bias = (const void*)matmul.bias;
    }
    return QueueGemm(stream, g, true);
}
