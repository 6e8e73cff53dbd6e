namespace ToMe.Backends;

/// <summary>
/// Memory owned by a backend (host arrays on the CPU, device memory on CUDA); elements are float32 or int32, or the half
/// type of an activation buffer (<see cref="IBackend.AllocateActivation"/>), which uploads and downloads as float32.
/// </summary>
internal abstract class DeviceBuffer : IDisposable
{
    public abstract long Length { get; }

    /// <summary>Bytes per element: 4 for float32 and int32, 2 for a half-precision activation buffer.</summary>
    public virtual int ElementSize => 4;

    public virtual void Dispose() { }
}

/// <summary>A Linear layer prepared once by a backend: <c>y = x · Wᵀ + b</c>, W stored as timm's [out, in].</summary>
internal interface ILinearWeights : IDisposable
{
    int OutFeatures { get; }
    int InFeatures { get; }

    /// <summary>The precision the layer computes in (Float32 or Int8; the model's other layers may differ).</summary>
    Precision Precision { get; }
}

/// <summary>What a Linear does with its result.</summary>
internal enum LinearEpilogue
{
    /// <summary>y = x·Wᵀ + b.</summary>
    Bias,

    /// <summary>y = GELU(x·Wᵀ + b), exact erf GELU.</summary>
    BiasGelu,

    /// <summary>y += x·Wᵀ + b (the residual add).</summary>
    BiasAccumulate,
}

/// <summary>
/// The design card's kernels as one op set. <see cref="Model.ForwardPass"/> is written once against it; the CPU backend
/// is the reference every other backend is tested against. Argument order: sources, then scalars, then destinations.
/// Shapes are row-major; <c>B</c> batch, <c>T</c> tokens, <c>C</c> channels, <c>H</c> heads, <c>D</c> head dim.
/// </summary>
internal interface IBackend : IDisposable
{
    string Name { get; }

    /// <summary>The hardware it runs on, in words, e.g. "NVIDIA H200 (cuda:0, sm_90, 140 GiB)".</summary>
    string DeviceName { get; }

    /// <summary>
    /// The most elements one buffer can hold. Sizes are 64-bit everywhere; this is what the memory behind them allows
    /// (see <see cref="Model.BatchLimits"/>, which refuses a batch past it before anything is allocated).
    /// </summary>
    long MaxBufferElements { get; }

    /// <summary>
    /// How many images the backend runs at once when <see cref="Model.ForwardPass"/> hands them over one by one through
    /// <see cref="ForEachImage"/>; 1 (the default) means it runs a batch as one, every op over all of its images.
    /// </summary>
    int ImageConcurrency => 1;

    /// <summary>
    /// Runs body(i) for every i in [0, count), up to <see cref="ImageConcurrency"/> at once, and returns when all are done.
    /// The ops a body issues run on its own thread alone.
    /// </summary>
    void ForEachImage(int count, Action<int> body)
    {
        for (int i = 0; i < count; i++)
            body(i);
    }

    DeviceBuffer AllocateFloat(long length);
    DeviceBuffer AllocateInt(long length);

    /// <summary>
    /// A buffer for the activations that only feed GEMMs and attention (LayerNorm output, qkv, attention output, the MLP's
    /// hidden layer) in a pass that runs in <paramref name="precision"/>: stored in bf16 or fp16 by a backend that runs
    /// those precisions, else float32 (the default). The residual stream, sizes, metrics and logits stay float32 buffers.
    /// Upload and Download convert to and from float32.
    /// </summary>
    DeviceBuffer AllocateActivation(long length, Precision precision) => AllocateFloat(length);
    void Upload(ReadOnlySpan<float> source, DeviceBuffer destination);
    void Upload(ReadOnlySpan<int> source, DeviceBuffer destination);
    void Download(DeviceBuffer source, Span<float> destination);
    void Download(DeviceBuffer source, Span<int> destination);

    /// <summary>
    /// The precision a forward pass that asks for <paramref name="requested"/> runs in here, <see cref="Precision.Auto"/>
    /// resolved to this backend's choice.
    /// </summary>
    /// <exception cref="NotSupportedException">This backend does not run <paramref name="requested"/>; the message says which does.</exception>
    Precision ResolvePrecision(Precision requested);

    /// <summary>
    /// Converts a Linear layer once to the backend's layout in <paramref name="precision"/> (a resolved one: not Auto).
    /// weight: [out, in]; bias: [out].
    /// </summary>
    ILinearWeights PrepareLinear(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, ReadOnlySpan<float> bias,
        Precision precision = Precision.Float32);

    // images: [B, 3, S, S]; patch: Linear [C, 3·P·P]; prefix: [p, C] (class, distillation tokens); pos: [T, C]
    // x: [B, T, C] with T = p + (S/P)²: [prefix tokens, patches in row-major grid order] + pos
    void PatchEmbed(DeviceBuffer images, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x);

    /// <summary>
    /// The forward's first step: <paramref name="images"/> (host memory, [B, 3, S, S]) uploaded into
    /// <paramref name="staging"/>, then <see cref="PatchEmbed"/> of it (the default). A backend that reads host memory
    /// where it lies (the CPU one) unfolds the patches straight from <paramref name="images"/> instead, with the same
    /// result, and leaves staging alone.
    /// </summary>
    void EmbedImages(ReadOnlySpan<float> images, DeviceBuffer staging, DeviceBuffer? prefix, DeviceBuffer pos, ILinearWeights patch,
        int batch, int imageSize, int patchSize, int prefixTokens, DeviceBuffer x)
    {
        Upload(images, staging);
        PatchEmbed(staging, prefix, pos, patch, batch, imageSize, patchSize, prefixTokens, x);
    }

    // x: [rows, C]; weight, bias: [C] -> y: [rows, C] (may alias x)
    void LayerNorm(DeviceBuffer x, DeviceBuffer weight, DeviceBuffer bias, int rows, int channels, float eps, DeviceBuffer y);

    // x: [rows, in] -> y: [rows, out]
    void Linear(DeviceBuffer x, ILinearWeights weights, int rows, LinearEpilogue epilogue, DeviceBuffer y);

    // x: [rows, fc1.In] -> y: [rows, fc2.Out] += fc2(GELU(fc1(x))), timm's MLP with its residual add, exactly as
    // Linear(x, fc1, BiasGelu, hidden) then Linear(hidden, fc2, BiasAccumulate, y); hidden: [rows, fc1.Out] scratch that a
    // backend keeping fc1's output in cache may leave untouched.
    void Mlp(DeviceBuffer x, ILinearWeights fc1, ILinearWeights fc2, int rows, DeviceBuffer hidden, DeviceBuffer y);

    // qkv: [B, T, 3, H, D]; size: [B, T] or null (no proportional attention)
    // -> output: [B, T, H·D]; keyMean: [B, T, D] (keys averaged over heads: ToMe's metric);
    //    classAttention: [B, T] or null (the class token's attention row averaged over heads)
    void Attention(DeviceBuffer qkv, DeviceBuffer? size, int batch, int tokens, int heads, int headDim,
        DeviceBuffer output, DeviceBuffer keyMean, DeviceBuffer? classAttention);

    // metric: [B, T, D] -> best: [B, ⌈T/2⌉] cosine similarity of each even token to its most similar odd token,
    // bestIndex: [B, ⌈T/2⌉] that odd token's index in set B (lowest on ties).
    // The first p = prefixTokens tokens are protected where their parity puts them, ToMe's rule for the class token (A₀)
    // and the distillation token (B₀) generalized to registers: A rows i < ⌈p/2⌉ are never sources (best −inf, index 0),
    // B columns j < ⌊p/2⌋ are never destinations.
    void BipartiteMatch(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens,
        DeviceBuffer best, DeviceBuffer bestIndex);

    // best: [B, ta] -> order: [B, ta] set-A indices by best descending, lower index first on ties;
    // the first r are the sources, the rest (re-sorted ascending when keepUnmergedInOrder) the kept tokens.
    void SelectTopR(DeviceBuffer best, int batch, int setA, int r, bool keepUnmergedInOrder, DeviceBuffer order);

    // x: [B, T, C], size: [B, T], groups: [B, T0] (current index of each original token), order/bestIndex from above;
    // weight: [B, T] or null (null: the sizes; ToMeCIS passes its scores)
    // -> xOut: [B, T−r, C] = Σ w·x / Σ w over each group, sizeOut: [B, T−r] = Σ size, groupsOut: [B, T0]; the new token
    //    order is [the p prefix tokens in their original order, the other kept A..., the other B...]: kept-A rank k < ⌈p/2⌉
    //    goes to 2k, B_j with j < ⌊p/2⌋ to 2j + 1 (order must rank the kept A ascending when p > 0). For p ≤ 1 that is
    //    ToMe's [kept A..., all B], for p = 2 its distilled [kept A₀, B₀, kept A₁..., B₁...] (SPEC-merging §2).
    //    A group whose weights sum to 0 falls back to the size weights.
    void Merge(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer order, DeviceBuffer bestIndex, DeviceBuffer? weight,
        int batch, int tokens, int channels, int originalTokens, int r, int prefixTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut);

    // qkv: [B, T, 3, H, D], classAttention: [B, T] (from Attention)
    // -> score: [B, T] = classAttention · ‖mean over heads of v‖₂ (ToMeCIS's class-importance score)
    void ClassImportance(DeviceBuffer qkv, DeviceBuffer classAttention, int batch, int tokens, int heads, int headDim, DeviceBuffer score);

    // metric: [B, T, D], role: [B, T] (≥ 0: kept as output token `role`; −1: source; −2: dropped)
    // -> dest: [B, T] output token of every token: kept tokens their role, dropped ones −1, a source the role of the
    //    kept token with the highest cosine similarity among those with role ≥ protectedOutputs (lowest token index on
    //    ties; −1 if there is none). Zero-norm metrics have similarity 0. Serves kth and random bipartite matching.
    void AssignToMostSimilar(DeviceBuffer metric, DeviceBuffer role, int batch, int tokens, int dim, int protectedOutputs,
        DeviceBuffer dest);

    // metric: [B, T, D] with T = prefix + gridHeight·gridWidth (patches in row-major order)
    // -> dest: [B, T] ToMato's connected components: 4-neighbour patches are joined when the cosine similarity of
    //    their metrics is > threshold; prefix token i keeps index i; the components follow, numbered in order of their
    //    smallest patch index. counts: [B] tokens each image keeps (prefix + components). Order-independent by
    //    construction (a label-propagation kernel converging to each component's smallest index gives the same answer).
    void GridComponents(DeviceBuffer metric, int batch, int tokens, int dim, int prefixTokens, int gridHeight, int gridWidth,
        float threshold, DeviceBuffer dest, DeviceBuffer counts);

    // x: [B, T, C], size: [B, T], groups: [B, T0], dest: [B, T] (output token of each token, −1: dropped)
    // -> xOut: [B, T', C] = Σ size·x / Σ size over the tokens sent to each output token, summed in ascending token
    //    order; sizeOut: [B, T'] = Σ size; an output token nothing is sent to (padding) gets zeros and size 0;
    //    groupsOut: [B, T0] = dest[groups] (−1 stays −1: an original token whose holder was dropped)
    void MergeAssigned(DeviceBuffer x, DeviceBuffer size, DeviceBuffer groups, DeviceBuffer dest,
        int batch, int tokens, int channels, int originalTokens, int newTokens,
        DeviceBuffer xOut, DeviceBuffer sizeOut, DeviceBuffer groupsOut);

    // x: [B, T, C] -> pooled: [B, count·C], the first `count` tokens of each image side by side
    void GatherPrefix(DeviceBuffer x, int batch, int tokens, int channels, int count, DeviceBuffer pooled);

    // x: [B, T, C], size: [B, T] -> pooled: [B, C] = Σ size·x / Σ size over tokens skip..T−1
    void WeightedMeanPool(DeviceBuffer x, DeviceBuffer size, int batch, int tokens, int channels, int skip, DeviceBuffer pooled);
}
