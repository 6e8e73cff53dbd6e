using ToMe.Weights;

namespace ToMe.Model;

/// <summary>One transformer block's parameters, float32, timm layouts (Linear weights are [out, in]).</summary>
internal sealed class BlockWeights
{
    public required float[] Norm1Weight, Norm1Bias;   // [C]
    public required float[] QkvWeight, QkvBias;       // [3C, C], [3C]
    public required float[] ProjWeight, ProjBias;     // [C, C], [C]
    public required float[] Norm2Weight, Norm2Bias;   // [C]
    public required float[] Fc1Weight, Fc1Bias;       // [hidden, C], [hidden]
    public required float[] Fc2Weight, Fc2Bias;       // [C, hidden], [C]
    public float[]? LayerScale1, LayerScale2;         // [C] when the model has LayerScale
}

/// <summary>
/// A model's parameters on the host, float32 whatever the file stored, every tensor's name and shape checked
/// against the <see cref="ModelConfig"/>: what <see cref="ModelLoader.Load(string, Weights.ModelLimits?)"/> (or its stream overload) reads and <see cref="Random"/> makes up, and
/// what <see cref="ToMeEngine.Create"/> builds engines from (each backend converts them once to its own layout and
/// precision, so one instance can serve several engines). The tensors themselves are the engine's business.
/// </summary>
public sealed class ModelWeights
{
    /// <summary>The configuration the tensors were checked against.</summary>
    public required ModelConfig Config { get; init; }

    // The tensors, for the backends: timm's names and layouts, float32.
    internal float[] PatchWeight { get; init; } = null!;     // [C, 3, P, P] = [C, 3·P·P]
    internal float[] PatchBias { get; init; } = null!;       // [C]
    internal float[]? ClassToken { get; init; }              // [C]
    internal float[]? DistToken { get; init; }               // [C]
    internal float[]? RegTokens { get; init; }               // [R, C] register tokens
    internal float[] PosEmbed { get; init; } = null!;        // [PosEmbedTokens, C]: every token, or the patches only (NoEmbedClass)
    internal BlockWeights[] Blocks { get; init; } = null!;
    internal float[]? NormWeight { get; init; }              // [C] final norm (token pooling)
    internal float[]? NormBias { get; init; }
    internal float[]? FcNormWeight { get; init; }            // [C] fc_norm (avg pooling)
    internal float[]? FcNormBias { get; init; }
    internal float[] HeadWeight { get; init; } = null!;      // [classes, C]
    internal float[] HeadBias { get; init; } = null!;        // [classes]
    internal float[]? HeadDistWeight { get; init; }          // [classes, C] (distilled)
    internal float[]? HeadDistBias { get; init; }

    private ModelWeights()
    {
    }

    /// <summary>The tensors a model of this configuration has, with timm's names and shapes: the single table of names.</summary>
    internal static IEnumerable<(string Name, int[] Shape)> Expected(ModelConfig c)
    {
        int dim = c.EmbedDim, p = c.PatchSize, hidden = c.MlpHidden, k = c.NumClasses;
        yield return ("patch_embed.proj.weight", [dim, 3, p, p]);
        yield return ("patch_embed.proj.bias", [dim]);
        if (c.ClassToken)
            yield return ("cls_token", [1, 1, dim]);
        if (c.Distilled)
            yield return ("dist_token", [1, 1, dim]);
        if (c.RegTokens > 0)
            yield return ("reg_token", [1, c.RegTokens, dim]);
        yield return ("pos_embed", [1, c.PosEmbedTokens, dim]);
        for (int i = 0; i < c.Depth; i++)
        {
            var b = $"blocks.{i}.";
            yield return (b + "norm1.weight", [dim]);
            yield return (b + "norm1.bias", [dim]);
            yield return (b + "attn.qkv.weight", [3 * dim, dim]);
            if (c.QkvBias)
                yield return (b + "attn.qkv.bias", [3 * dim]);
            yield return (b + "attn.proj.weight", [dim, dim]);
            yield return (b + "attn.proj.bias", [dim]);
            if (c.LayerScale)
            {
                yield return (b + "ls1.gamma", [dim]);
                yield return (b + "ls2.gamma", [dim]);
            }
            yield return (b + "norm2.weight", [dim]);
            yield return (b + "norm2.bias", [dim]);
            yield return (b + "mlp.fc1.weight", [hidden, dim]);
            yield return (b + "mlp.fc1.bias", [hidden]);
            yield return (b + "mlp.fc2.weight", [dim, hidden]);
            yield return (b + "mlp.fc2.bias", [dim]);
        }
        if (c.FcNorm)
        {
            yield return ("fc_norm.weight", [dim]);
            yield return ("fc_norm.bias", [dim]);
        }
        else
        {
            yield return ("norm.weight", [dim]);
            yield return ("norm.bias", [dim]);
        }
        yield return ("head.weight", [k, dim]);
        yield return ("head.bias", [k]);
        if (c.Distilled)
        {
            yield return ("head_dist.weight", [k, dim]);
            yield return ("head_dist.bias", [k]);
        }
    }

    /// <summary>Reads and checks every tensor; a missing, extra or misshapen tensor is an error naming it.</summary>
    internal static ModelWeights Load(SafeTensorsFile file, ModelConfig config)
    {
        var expected = Check(file, config);
        var pos = file.Get("pos_embed").Shape;
        return Build(config, name => !expected.Contains(name) ? null
            : name == "pos_embed" && PosEmbedResampler.StoredGrid(pos, config) is int grid ? PosEmbedResampler.Resample(file.ReadFloat32(name), config, grid)
            : file.ReadFloat32(name));
    }

    /// <summary>Checks names, shapes and dtypes against the configuration; returns the expected names.</summary>
    internal static HashSet<string> Check(SafeTensorsFile file, ModelConfig config)
    {
        var fileName = Path.GetFileName(file.FilePath);
        var expected = Expected(config).ToDictionary(e => e.Name, e => e.Shape);
        foreach (var (name, shape) in expected)
        {
            if (!file.Contains(name))
                throw new InvalidModelException($"{fileName}: missing tensor '{name}' (expected shape {TensorInfo.FormatShape(shape)} for {config.Architecture})");
            var info = file.Get(name);
            // A position embedding for another square grid is resampled to the config's at load.
            bool otherGrid = name == "pos_embed" && PosEmbedResampler.StoredGrid(info.Shape, config) is not null;
            if (!otherGrid && !info.Shape.SequenceEqual(shape))
                throw new InvalidModelException($"{fileName}: tensor '{name}' has shape {info.ShapeText}, expected {TensorInfo.FormatShape(shape)} for {config.Architecture}");
            if (info.DType is not (DType.F32 or DType.F16 or DType.BF16))
                throw new InvalidModelException($"{fileName}: tensor '{name}' is {info.DType}, expected F32, F16 or BF16");
        }
        var unexpected = file.Tensors.Keys.Where(n => !expected.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new InvalidModelException(
                $"{fileName}: unexpected tensor '{unexpected[0]}'{(unexpected.Count > 1 ? $" (and {unexpected.Count - 1} more)" : "")} for {config.Architecture}: the config does not describe these weights");

        return expected.Keys.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Assembles the weights from a source that returns each expected tensor (null for absent ones).</summary>
    private static ModelWeights Build(ModelConfig config, Func<string, float[]?> source)
    {
        float[] Read(string name) => source(name) ?? throw new InvalidOperationException($"tensor '{name}' is required");
        float[]? Maybe(string name) => source(name);
        var blocks = new BlockWeights[config.Depth];
        for (int i = 0; i < config.Depth; i++)
        {
            var b = $"blocks.{i}.";
            blocks[i] = new BlockWeights
            {
                Norm1Weight = Read(b + "norm1.weight"),
                Norm1Bias = Read(b + "norm1.bias"),
                QkvWeight = Read(b + "attn.qkv.weight"),
                QkvBias = Maybe(b + "attn.qkv.bias") ?? new float[3 * config.EmbedDim],
                ProjWeight = Read(b + "attn.proj.weight"),
                ProjBias = Read(b + "attn.proj.bias"),
                Norm2Weight = Read(b + "norm2.weight"),
                Norm2Bias = Read(b + "norm2.bias"),
                Fc1Weight = Read(b + "mlp.fc1.weight"),
                Fc1Bias = Read(b + "mlp.fc1.bias"),
                Fc2Weight = Read(b + "mlp.fc2.weight"),
                Fc2Bias = Read(b + "mlp.fc2.bias"),
                LayerScale1 = Maybe(b + "ls1.gamma"),
                LayerScale2 = Maybe(b + "ls2.gamma"),
            };
        }
        return new ModelWeights
        {
            Config = config,
            PatchWeight = Read("patch_embed.proj.weight"),
            PatchBias = Read("patch_embed.proj.bias"),
            ClassToken = Maybe("cls_token"),
            DistToken = Maybe("dist_token"),
            RegTokens = Maybe("reg_token"),
            PosEmbed = Read("pos_embed"),
            Blocks = blocks,
            NormWeight = Maybe("norm.weight"),
            NormBias = Maybe("norm.bias"),
            FcNormWeight = Maybe("fc_norm.weight"),
            FcNormBias = Maybe("fc_norm.bias"),
            HeadWeight = Read("head.weight"),
            HeadBias = Read("head.bias"),
            HeadDistWeight = Maybe("head_dist.weight"),
            HeadDistBias = Maybe("head_dist.bias"),
        };
    }

    /// <summary>Seeded random weights for any configuration (for speed measurements and tests on models without files).</summary>
    public static ModelWeights Random(ModelConfig config, int seed)
    {
        var rng = new System.Random(seed);
        var tensors = new Dictionary<string, float[]>();
        foreach (var (name, shape) in Expected(config))
        {
            long n = shape.Aggregate(1L, (a, d) => a * d);
            var data = new float[n];
            bool isGain = name.EndsWith("norm1.weight") || name.EndsWith("norm2.weight") || name is "norm.weight" or "fc_norm.weight";
            // Fan-in scaled weights keep activations O(1) through the depth, so timings see realistic values.
            int fanIn = shape.Length == 4 ? shape[1] * shape[2] * shape[3] : shape[^1];
            float scale = name.EndsWith(".weight") && !isGain ? 1.7f / MathF.Sqrt(fanIn) : 0.02f;
            for (long i = 0; i < n; i++)
                data[i] = (isGain ? 1f : 0f) + scale * (float)(rng.NextDouble() * 2 - 1);
            tensors[name] = data;
        }
        return Build(config, name => tensors.GetValueOrDefault(name));
    }
}
