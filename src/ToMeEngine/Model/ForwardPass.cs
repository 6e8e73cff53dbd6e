using System.Runtime.CompilerServices;
using ToMe.Backends;
using ToMe.Merging;

namespace ToMe.Model;

/// <summary>
/// THE forward pass of a timm ViT / DeiT with token merging, written once over <see cref="IBackend"/>: the only place that
/// knows the block order. Holds the model's weights in the backend's form; not thread-safe (one call at a time).
/// </summary>
internal sealed partial class ForwardPass : IDisposable
{
    private readonly IBackend backend;
    private readonly ModelConfig config;
    private readonly ILinearWeights patch;
    private readonly DeviceBuffer? prefix;
    private readonly DeviceBuffer pos;
    private readonly PreparedBlock[] blocks;
    private readonly DeviceBuffer? normWeight, normBias;
    private readonly DeviceBuffer? fcNormWeight, fcNormBias;
    private readonly ILinearWeights head;
    private Workspace? workspace;
    private readonly System.Collections.Concurrent.ConcurrentBag<Workspace> imageWorkspaces = [];

    private sealed record PreparedBlock(
        DeviceBuffer Norm1Weight, DeviceBuffer Norm1Bias, ILinearWeights Qkv, ILinearWeights Proj,
        DeviceBuffer Norm2Weight, DeviceBuffer Norm2Bias, ILinearWeights Fc1, ILinearWeights Fc2);

    public ModelConfig Config => config;

    /// <summary>The precision the pass runs in (Auto resolved by the backend).</summary>
    public Precision Precision { get; }

    /// <param name="backend">Where it runs.</param>
    /// <param name="weights">The model.</param>
    /// <param name="precision">Checked against the backend (NotSupportedException with the reason when it does not run it).</param>
    /// <param name="layerPrecision">Each Linear layer's precision (default: <see cref="LinearLayer.DefaultPrecision"/>).</param>
    public ForwardPass(IBackend backend, ModelWeights weights, Precision precision = Precision.Float32,
        Func<LinearLayer, Precision>? layerPrecision = null)
    {
        this.backend = backend;
        config = weights.Config;
        Precision = backend.ResolvePrecision(precision);
        var resolved = Precision;
        layerPrecision ??= layer => layer.DefaultPrecision(resolved);
        // Everything uploaded so far is released when a later upload fails (out of device memory at load): an engine that
        // fails to load leaves nothing behind on a device other engines share.
        loading = [];
        try
        {
            (patch, prefix, pos, blocks, normWeight, normBias, fcNormWeight, fcNormBias, head) = Upload(weights, layerPrecision);
        }
        catch (Backends.Cuda.CudaOutOfMemoryException e)
        {
            ReleaseLoaded();
            throw e.For($"{e.What}, loading {config.Architecture} (its weights are {Backends.Cuda.CudaFaults.Bytes(4 * config.ParameterCount)} in fp32)");
        }
        catch
        {
            ReleaseLoaded();
            throw;
        }
        loading = null;
    }

    private List<IDisposable>? loading;

    private void ReleaseLoaded()
    {
        for (int i = loading!.Count - 1; i >= 0; i--)
            loading[i].Dispose();
        loading = null;
    }

    private T Loaded<T>(T resource) where T : IDisposable
    {
        loading!.Add(resource);
        return resource;
    }

    private (ILinearWeights, DeviceBuffer?, DeviceBuffer, PreparedBlock[], DeviceBuffer?, DeviceBuffer?, DeviceBuffer?, DeviceBuffer?, ILinearWeights)
        Upload(ModelWeights weights, Func<LinearLayer, Precision> layerPrecision)
    {
        DeviceBuffer? prefix = null, normWeight = null, normBias = null, fcNormWeight = null, fcNormBias = null;
        int c = config.EmbedDim;
        var patch = Loaded(backend.PrepareLinear(weights.PatchWeight, c, 3 * config.PatchSize * config.PatchSize, weights.PatchBias,
            layerPrecision(new(LinearKind.PatchEmbed, -1))));
        // timm's order: [cls, dist, patches] or [cls, reg..., patches] (a distilled model has no registers).
        if (config.PrefixTokens > 0)
            prefix = Vector([.. weights.ClassToken ?? [], .. weights.DistToken ?? [], .. weights.RegTokens ?? []]);
        var pos = Vector(FullPositionEmbedding(weights));
        var blocks = weights.Blocks.Select((b, l) => new PreparedBlock(
            Vector(b.Norm1Weight), Vector(b.Norm1Bias),
            Loaded(backend.PrepareLinear(b.QkvWeight, 3 * c, c, b.QkvBias, layerPrecision(new(LinearKind.Qkv, l)))),
            PrepareScaled(b.ProjWeight, c, c, b.ProjBias, b.LayerScale1, layerPrecision(new(LinearKind.Proj, l))),
            Vector(b.Norm2Weight), Vector(b.Norm2Bias),
            Loaded(backend.PrepareLinear(b.Fc1Weight, config.MlpHidden, c, b.Fc1Bias, layerPrecision(new(LinearKind.Fc1, l)))),
            PrepareScaled(b.Fc2Weight, c, config.MlpHidden, b.Fc2Bias, b.LayerScale2, layerPrecision(new(LinearKind.Fc2, l))))).ToArray();
        if (weights.NormWeight is not null)
        {
            normWeight = Vector(weights.NormWeight);
            normBias = Vector(weights.NormBias!);
        }
        if (weights.FcNormWeight is not null)
        {
            fcNormWeight = Vector(weights.FcNormWeight);
            fcNormBias = Vector(weights.FcNormBias!);
        }
        var head = PrepareHead(weights, layerPrecision(new(LinearKind.Head, -1)));
        return (patch, prefix, pos, blocks, normWeight, normBias, fcNormWeight, fcNormBias, head);
    }

    /// <summary>
    /// pos_embed over every token. With no_embed_class the prefix rows are zeros: the backends add the same [T, C] table,
    /// and prefix + 0 is the prefix exactly, which is timm's "position for the patches only".
    /// </summary>
    private static float[] FullPositionEmbedding(ModelWeights weights)
    {
        var c = weights.Config;
        if (!c.NoEmbedClass)
            return weights.PosEmbed;
        var full = new float[c.Tokens * c.EmbedDim];
        weights.PosEmbed.CopyTo(full, c.PrefixTokens * c.EmbedDim);
        return full;
    }

    private DeviceBuffer Vector(float[] values)
    {
        var buffer = Loaded(backend.AllocateFloat(values.Length));
        backend.Upload(values, buffer);
        return buffer;
    }

    /// <summary>LayerScale folded into the Linear: γ⊙(x·Wᵀ + b) = x·(γ⊙W)ᵀ + γ⊙b.</summary>
    private ILinearWeights PrepareScaled(float[] weight, int outFeatures, int inFeatures, float[] bias, float[]? gamma, Precision precision)
    {
        if (gamma is null)
            return Loaded(backend.PrepareLinear(weight, outFeatures, inFeatures, bias, precision));
        var w = (float[])weight.Clone();
        var b = (float[])bias.Clone();
        for (int o = 0; o < outFeatures; o++)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(w.AsSpan(o * inFeatures, inFeatures), gamma[o], w.AsSpan(o * inFeatures, inFeatures));
            b[o] *= gamma[o];
        }
        return Loaded(backend.PrepareLinear(w, outFeatures, inFeatures, b, precision));
    }

    /// <summary>
    /// The classifier. A distilled model's (head(x_cls) + head_dist(x_dist)) / 2 is one Linear over the two tokens side by
    /// side with halved weights: [x_cls, x_dist]·[W/2, W_dist/2]ᵀ + (b + b_dist)/2 (halving is exact in binary).
    /// </summary>
    private ILinearWeights PrepareHead(ModelWeights weights, Precision precision)
    {
        int c = config.EmbedDim, k = config.NumClasses;
        if (!config.Distilled || config.GlobalPool != GlobalPool.Token)
            return Loaded(backend.PrepareLinear(weights.HeadWeight, k, c, weights.HeadBias, precision));
        var w = new float[k * 2 * c];
        var b = new float[k];
        for (int o = 0; o < k; o++)
        {
            for (int i = 0; i < c; i++)
            {
                w[o * 2 * c + i] = weights.HeadWeight[o * c + i] * 0.5f;
                w[o * 2 * c + c + i] = weights.HeadDistWeight![o * c + i] * 0.5f;
            }
            b[o] = (weights.HeadBias[o] + weights.HeadDistBias![o]) * 0.5f;
        }
        return Loaded(backend.PrepareLinear(w, k, 2 * c, b, precision));
    }

    /// <summary>
    /// Whether <see cref="Run"/> does anything with <c>next</c>: the backend records forwards and stages their inputs
    /// (CUDA), so a caller gathers the next batch ahead only where it is used.
    /// </summary>
    public bool TakesNextBatch => backend is IForwardCapture;

    /// <summary>The batch given as <c>next</c> to the last <see cref="Run"/> will not run: see <see cref="IForwardCapture.ForgetNext"/>.</summary>
    public void ForgetNext() => (backend as IForwardCapture)?.ForgetNext();

    /// <summary>
    /// Runs a preprocessed batch. images: [B, 3, S, S] float32. <c>next</c>: the images of the batch the caller will run
    /// next, when it knows them; a backend with a copy engine starts uploading them while this batch runs (they must not
    /// change until that call).
    /// </summary>
    [MethodImpl(Jit.Hot)]
    public ForwardResult Run(ReadOnlySpan<float> images, int batch, ForwardOptions options, ForwardTrace? trace = null,
        ReadOnlySpan<float> next = default)
    {
        int s = config.ImageSize;
        if (batch <= 0)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be positive");
        BatchLimits.Check(backend, config, batch, options.ReturnTokens);
        if (images.Length != (long)batch * 3 * s * s)
            throw new ArgumentException($"input has {images.Length} values, expected [{batch}, 3, {s}, {s}] = {(long)batch * 3 * s * s}", nameof(images));
        if (options.Strategy is CisMerge && !config.ClassToken)
            throw new ArgumentException($"--merge cis weighs tokens by the class token's attention, and {config.Architecture} has no class token");
        try
        {
            return RunBatch(images, batch, options, trace, next);
        }
        catch (Backends.Cuda.CudaOutOfMemoryException e)
        {
            // Nothing of the failed batch stays allocated (the workspace is dropped before it is replaced; scratch grows
            // only after the old block is freed): a smaller batch runs next.
            throw e.For($"{e.What}, in a forward pass of {config.Architecture} at batch {batch}" +
                        (e.What.Contains(Backends.Cuda.CudaFaults.SetOnce, StringComparison.Ordinal) ? " (one allocation per engine: a smaller batch needs it too)"
                            : batch > 1 ? " (smaller batches still run)" : " (the smallest batch)"));
        }
    }

    [MethodImpl(Jit.Hot)]
    private ForwardResult RunBatch(ReadOnlySpan<float> images, int batch, ForwardOptions options, ForwardTrace? trace,
        ReadOnlySpan<float> next)
    {
        int s = config.ImageSize;
        // Images never interact, so a backend that can run several at once (the CPU backend: one image per thread, each
        // image's ops on its thread alone) gets them one by one: no synchronization between threads inside a forward, and
        // an image's activations stay in the core's own cache. Full rounds go that way; a remainder smaller than the
        // concurrency runs as one batch with the ops parallel inside it. ToMato pads every image to the batch's largest
        // token count, and a trace reports whole-batch tensors: both run as one batch.
        int lanes = backend.ImageConcurrency;
        int concurrent = lanes > 1 && trace is null && options.Strategy is not ToMatoMerge ? batch - batch % lanes : 0;
        if (concurrent == 0)
        {
            var ws = workspace is { Capacity: var capacity } && capacity >= batch ? workspace : (workspace = Replace(workspace, batch));
            // A backend that records forwards (CUDA graphs) gets the whole group to run, replay or capture; a traced run
            // reads tensors back between ops and always runs as written.
            if (trace is null && backend is IForwardCapture capture)
                return capture.Run(new ForwardKey(ws, batch, options.Strategy, PlanKey(options), options.ProportionalAttention,
                    options.ReturnTokens, options.ReturnMerges, Precision), images, group => RunGroup(group, batch, options, ws, null), next);
            return RunGroup(images, batch, options, ws, trace);
        }
        var parts = new ForwardResult[concurrent + 1];
        int perImage = 3 * s * s;
        unsafe
        {
            fixed (float* pixels = images)
            {
                nint first = (nint)pixels;
                backend.ForEachImage(concurrent, [MethodImpl(Jit.Hot)] (i) =>
                {
                    var ws = RentImageWorkspace();
                    try
                    {
                        parts[i] = RunGroup(new ReadOnlySpan<float>((float*)first + (long)i * perImage, perImage), 1, options, ws, null);
                    }
                    finally
                    {
                        imageWorkspaces.Add(ws);
                    }
                });
            }
        }
        if (concurrent < batch)
        {
            int rest = batch - concurrent;
            var ws = workspace is { Capacity: var capacity } && capacity >= rest ? workspace : (workspace = Replace(workspace, rest));
            parts[concurrent] = RunGroup(images[(concurrent * perImage)..], rest, options, ws, null);
        }
        return Concatenate(concurrent < batch ? parts : parts[..concurrent], batch);
    }

    /// <summary>The per-layer merge counts: with the strategy, what decides the ops a forward issues.</summary>
    private string PlanKey(ForwardOptions options) =>
        options.Strategy.Plan(options.Schedule, config.Depth, config.Tokens, config.PrefixTokens) is { } plan
            ? string.Join(',', plan.MergedPerLayer) : "";

    private Workspace RentImageWorkspace() => imageWorkspaces.TryTake(out var ws) ? ws : new Workspace(backend, config, 1, Precision);

    // Results of consecutive image groups as one batch's (every group has the same token counts: ToMato never gets here).
    // Block copies: element by element through enumerators, a batch's logits held the worker threads idle at the join.
    [MethodImpl(Jit.Hot)]
    private static ForwardResult Concatenate(ForwardResult[] parts, int batch)
    {
        var first = parts[0];
        return new ForwardResult(batch, Join(parts, p => p.Logits), first.TokensPerLayer, first.FinalTokens,
            Join(parts, p => p.Size), Join(parts, p => p.Groups), first.Tokens is null ? null : Join(parts, p => p.Tokens!));
    }

    private static T[] Join<T>(ForwardResult[] parts, Func<ForwardResult, T[]> of)
    {
        int length = 0;
        foreach (var part in parts)
            length += of(part).Length;
        var joined = new T[length];
        int at = 0;
        foreach (var part in parts)
        {
            var values = of(part);
            values.CopyTo(joined, at);
            at += values.Length;
        }
        return joined;
    }

    // Runs `batch` images in the given workspace: every op over the whole group.
    [MethodImpl(Jit.Hot)]
    private ForwardResult RunGroup(ReadOnlySpan<float> images, int batch, ForwardOptions options, Workspace ws, ForwardTrace? trace)
    {
        int s = config.ImageSize, c = config.EmbedDim, t0 = config.Tokens, p = config.PrefixTokens;
        var strategy = options.Strategy;
        // ToMato's token counts depend on the image: it has no plan, and merges once, in block 0.
        var merged = strategy.Plan(options.Schedule, config.Depth, t0, p)?.MergedPerLayer ?? new int[config.Depth];
        bool propAttn = options.ProportionalAttention || strategy is ToMatoMerge;
        ulong[]? imageKeys = null;
        if (strategy is RandomMerge { Seed: var seed })
        {
            imageKeys = new ulong[batch];
            for (int b = 0; b < batch; b++)
                imageKeys[b] = TokenRoles.ImageKey(seed, images.Slice(b * 3 * s * s, 3 * s * s));
        }
        var tokensPerLayer = new int[config.Depth];

        ws.Rewind();
        backend.EmbedImages(images, ws.Images, prefix, pos, patch, batch, s, config.PatchSize, p, ws.X);
        backend.Upload(ws.InitialSize.AsSpan(0, batch * t0), ws.Size);
        backend.Upload(ws.InitialGroups.AsSpan(0, batch * t0), ws.Groups);
        if (trace?.OnEmbed is { } onEmbed)
            onEmbed(Download(ws.X, (long)batch * t0 * c));

        int t = t0;
        for (int l = 0; l < config.Depth; l++)
        {
            var block = blocks[l];
            tokensPerLayer[l] = t;
            int rows = batch * t;
            bool cis = strategy is CisMerge && merged[l] > 0;
            backend.LayerNorm(ws.X, block.Norm1Weight, block.Norm1Bias, rows, c, config.NormEps, ws.Hidden);
            backend.Linear(ws.Hidden, block.Qkv, rows, LinearEpilogue.Bias, ws.Qkv);
            backend.Attention(ws.Qkv, propAttn ? ws.Size : null, batch, t, config.NumHeads, config.HeadDim,
                ws.Hidden, ws.Metric, cis ? ws.ClassAttention : null);
            backend.Linear(ws.Hidden, block.Proj, rows, LinearEpilogue.BiasAccumulate, ws.X);

            if (MergeTokens(strategy, l, merged[l], t, batch, imageKeys, ws, trace) is int next)
            {
                ws.SwapMerged();
                t = next;
                rows = batch * t;
            }

            backend.LayerNorm(ws.X, block.Norm2Weight, block.Norm2Bias, rows, c, config.NormEps, ws.Hidden);
            backend.Mlp(ws.Hidden, block.Fc1, block.Fc2, rows, ws.Mlp, ws.X);
            if (trace?.OnBlock is { } onBlock)
                onBlock(l, Download(ws.X, (long)rows * c));
        }

        float[]? tokens = null;
        if (options.ReturnTokens)
        {
            // timm's forward_features: every token through the final norm (the head path below normalizes only what it reads).
            if (normWeight is not null)
                backend.LayerNorm(ws.X, normWeight, normBias!, batch * t, c, config.NormEps, ws.Hidden);
            tokens = Download(normWeight is not null ? ws.Hidden : ws.X, (long)batch * t * c);
        }
        if (config.GlobalPool == GlobalPool.Token)
        {
            // Only the class (and distillation) token reaches the head, never the registers, and LayerNorm is per token:
            // normalize just those.
            int headTokens = config.Distilled ? 2 : 1;
            backend.GatherPrefix(ws.X, batch, t, c, headTokens, ws.Pooled);
            backend.LayerNorm(ws.Pooled, normWeight!, normBias!, batch * headTokens, c, config.NormEps, ws.Pooled);
        }
        else
        {
            if (normWeight is not null)
                backend.LayerNorm(ws.X, normWeight, normBias!, batch * t, c, config.NormEps, ws.X);
            backend.WeightedMeanPool(ws.X, ws.Size, batch, t, c, p, ws.Pooled);
            if (fcNormWeight is not null)
                backend.LayerNorm(ws.Pooled, fcNormWeight, fcNormBias!, batch, c, config.NormEps, ws.Pooled);
        }
        backend.Linear(ws.Pooled, head, batch, LinearEpilogue.Bias, ws.Logits);

        var logits = Download(ws.Logits, batch * config.NumClasses);
        float[] size = [];
        int[] groups = [];
        if (options.ReturnMerges)
        {
            size = Download(ws.Size, batch * t);
            groups = new int[batch * t0];
            backend.Download(ws.Groups, groups);
        }
        return new ForwardResult(batch, logits, tokensPerLayer, t, size, groups, tokens);
    }

    /// <summary>
    /// Layer l's merge, after the attention's residual add: writes the merged tokens to the workspace's Next buffers and
    /// returns the token count after it, or null when this layer does not merge.
    /// </summary>
    [MethodImpl(Jit.Hot)]
    private int? MergeTokens(MergeStrategy strategy, int l, int r, int t, int batch, ulong[]? imageKeys, Workspace ws, ForwardTrace? trace)
    {
        int c = config.EmbedDim, t0 = config.Tokens, p = config.PrefixTokens, d = config.HeadDim;
        switch (strategy)
        {
            case ToMeMerge or CisMerge when r > 0:
                // Prefix tokens (class, distillation, registers) keep their even/odd slots and are protected there; see IBackend.
                backend.BipartiteMatch(ws.Metric, batch, t, d, p, ws.Best, ws.BestIndex);
                backend.SelectTopR(ws.Best, batch, (t + 1) / 2, r, p > 0, ws.Order);
                if (trace?.OnMerge is { } onMerge)
                    ReportMerge(onMerge, l, ws, batch, (t + 1) / 2, r);
                DeviceBuffer? weight = null;
                if (strategy is CisMerge)
                {
                    backend.ClassImportance(ws.Qkv, ws.ClassAttention, batch, t, config.NumHeads, d, ws.Score);
                    weight = ws.Score;
                }
                backend.Merge(ws.X, ws.Size, ws.Groups, ws.Order, ws.BestIndex, weight, batch, t, c, t0, r, p,
                    ws.XNext, ws.SizeNext, ws.GroupsNext);
                return t - r;

            case KthMerge { K: var k } when r > 0:
                for (int b = 0; b < batch; b++)
                    TokenRoles.Kth(t, k, ws.HostRole.AsSpan(b * t, t));
                return Assign(0, t / k);

            case RandomMerge when r > 0:
                for (int b = 0; b < batch; b++)
                    TokenRoles.Random(imageKeys![b], l, t, p, r, ws.HostRole.AsSpan(b * t, t));
                return Assign(p, t - r);

            case ToMatoMerge { Threshold: var threshold } when l == 0:
                backend.GridComponents(ws.Metric, batch, t, d, p, config.GridSize, config.GridSize, threshold, ws.Dest, ws.Counts);
                var counts = new int[batch];
                backend.Download(ws.Counts, counts);
                // Every image is padded to the batch's largest count with size-0 slots, which attention and pooling ignore.
                return Scatter(counts.Max());

            default:
                return null;
        }

        int Assign(int protectedOutputs, int newTokens)
        {
            backend.Upload(ws.HostRole.AsSpan(0, batch * t), ws.Role);
            backend.AssignToMostSimilar(ws.Metric, ws.Role, batch, t, d, protectedOutputs, ws.Dest);
            return Scatter(newTokens);
        }

        int Scatter(int newTokens)
        {
            if (trace?.OnAssign is { } onAssign)
            {
                var dest = new int[batch * t];
                backend.Download(ws.Dest, dest);
                onAssign(l, dest);
            }
            backend.MergeAssigned(ws.X, ws.Size, ws.Groups, ws.Dest, batch, t, c, t0, newTokens, ws.XNext, ws.SizeNext, ws.GroupsNext);
            return newTokens;
        }
    }

    private void ReportMerge(Action<int, int[], int[]> onMerge, int layer, Workspace ws, int batch, int setA, int r)
    {
        var order = new int[batch * setA];
        var bestIndex = new int[batch * setA];
        backend.Download(ws.Order, order);
        backend.Download(ws.BestIndex, bestIndex);
        var src = new int[batch * r];
        var dst = new int[batch * r];
        for (int b = 0; b < batch; b++)
        {
            var sources = order.AsSpan(b * setA, r).ToArray();
            Array.Sort(sources);
            for (int i = 0; i < r; i++)
            {
                src[b * r + i] = sources[i];
                dst[b * r + i] = bestIndex[b * setA + sources[i]];
            }
        }
        onMerge(layer, src, dst);
    }

    private float[] Download(DeviceBuffer buffer, long length)
    {
        var host = new float[length];
        backend.Download(buffer, host);
        return host;
    }

    private Workspace Replace(Workspace? old, int batch)
    {
        // Forget the old buffers before allocating: if the new batch does not fit (device memory), the next call at a
        // smaller batch allocates afresh instead of reusing freed memory.
        workspace = null;
        old?.Dispose();
        return new Workspace(backend, config, batch, Precision);
    }

    public void Dispose()
    {
        workspace?.Dispose();
        while (imageWorkspaces.TryTake(out var ws))
            ws.Dispose();
        patch.Dispose();
        prefix?.Dispose();
        pos.Dispose();
        foreach (var b in blocks)
        {
            b.Norm1Weight.Dispose(); b.Norm1Bias.Dispose(); b.Qkv.Dispose(); b.Proj.Dispose();
            b.Norm2Weight.Dispose(); b.Norm2Bias.Dispose(); b.Fc1.Dispose(); b.Fc2.Dispose();
        }
        normWeight?.Dispose(); normBias?.Dispose(); fcNormWeight?.Dispose(); fcNormBias?.Dispose();
        head.Dispose();
    }
}
