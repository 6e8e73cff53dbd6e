using System.Text.Json;
using ToMe.Imaging;
using ToMe.Weights;

namespace ToMe.Model;

/// <summary>
/// Reads a <see cref="ModelConfig"/> from timm's hub <c>config.json</c> (architecture name + <c>pretrained_cfg</c>,
/// optionally <c>model_args</c>) or from the engine's single-file form: a safetensors whose <c>__metadata__.config</c>
/// holds <c>img_size, patch_size, embed_dim, depth, num_heads, num_classes, [class_token], [global_pool], distilled,
/// mean, std, crop_pct, crop_mode, interpolation, label_names</c>.
/// </summary>
internal static class ModelConfigReader
{
    private static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    private static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];
    private static readonly float[] Half3 = [0.5f, 0.5f, 0.5f];

    /// <summary>A known timm architecture with its family's default preprocessing and 1000 classes (for random weights).</summary>
    public static ModelConfig FromArchitectureName(string name, int numClasses = 1000) =>
        FromHubConfig($$"""{"architecture": "{{name.Replace("\"", "")}}", "num_classes": {{numClasses}}}""", $"architecture '{name}'");

    /// <summary>Reads timm's hub <c>config.json</c>.</summary>
    public static ModelConfig FromHubConfig(string json, string source, ModelLimits? limits = null)
    {
        using var doc = Parse(json, source, limits);
        var root = doc.RootElement;
        var archName = GetString(root, "architecture", source) ?? throw new InvalidModelException($"{source}: missing field 'architecture'");
        var args = root.TryGetProperty("model_args", out var ma) && ma.ValueKind == JsonValueKind.Object ? ma : default;
        // model_args (timm's constructor arguments) describe the model fully; the name table fills in what they omit.
        var arch = ArchitectureTable.TryResolve(archName, out var known) ? known
            : GetInt(args, "embed_dim", source) is int dim && GetInt(args, "depth", source) is int depth && GetInt(args, "num_heads", source) is int heads
              && GetInt(args, "patch_size", source) is int patch && GetInt(args, "img_size", source) is int img
                ? new ArchitectureTable.Architecture(archName.Split('.', 2)[0], FamilyOf(archName),
                    dim, depth, heads, patch, img, archName.Contains("distilled", StringComparison.Ordinal))
                : ArchitectureTable.TryResolve(archName, out var named) ? named
                : throw new InvalidModelException($"{source}: {ArchitectureTable.UnknownMessage(archName)}");
        RefuseUnsupported(args, source);
        var pre = root.TryGetProperty("pretrained_cfg", out var pc) && pc.ValueKind == JsonValueKind.Object ? pc : default;

        int embedDim = GetInt(args, "embed_dim", source) ?? arch.EmbedDim;
        int imageSize = GetInt(args, "img_size", source) ?? InputSize(pre, source) ?? arch.ImageSize;
        bool classToken = GetBool(args, "class_token", source) ?? true;
        var pool = (GetString(args, "global_pool", source) ?? GetString(root, "global_pool", source)) is { } poolName ? ParsePool(poolName, source)
            : classToken ? arch.GlobalPool : GlobalPool.Avg;
        var config = new ModelConfig
        {
            Architecture = arch.Name,
            ImageSize = imageSize,
            PatchSize = GetInt(args, "patch_size", source) ?? arch.PatchSize,
            EmbedDim = embedDim,
            Depth = GetInt(args, "depth", source) ?? arch.Depth,
            NumHeads = GetInt(args, "num_heads", source) ?? arch.NumHeads,
            MlpHidden = (int)(embedDim * (GetDouble(args, "mlp_ratio", source) ?? 4.0)),
            NumClasses = GetInt(root, "num_classes", source) ?? GetInt(args, "num_classes", source) ?? 1000,
            ClassToken = classToken,
            Distilled = arch.Distilled,
            GlobalPool = pool,
            FcNorm = GetBool(args, "fc_norm", source) ?? pool == GlobalPool.Avg,
            QkvBias = GetBool(args, "qkv_bias", source) ?? true,
            LayerScale = GetDouble(args, "init_values", source) is not null || arch.LayerScale,
            RegTokens = GetInt(args, "reg_tokens", source) ?? arch.RegTokens,
            NoEmbedClass = GetBool(args, "no_embed_class", source) ?? arch.NoEmbedClass,
            Preprocess = ReadPreprocess(pre, imageSize, arch.Family, source),
            LabelNames = Labels(root, source),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Reads the engine's single-file config JSON (the fixtures' <c>__metadata__.config</c>).</summary>
    public static ModelConfig FromEmbeddedConfig(string json, string source, ModelLimits? limits = null)
    {
        using var doc = Parse(json, source, limits);
        var root = doc.RootElement;
        RefuseUnsupported(root, source);
        int Required(string field) => GetInt(root, field, source) ?? throw new InvalidModelException($"{source}: config is missing field '{field}'");
        int embedDim = Required("embed_dim");
        bool classToken = GetBool(root, "class_token", source) ?? true;
        var pool = ParsePool(GetString(root, "global_pool", source) ?? "token", source);
        bool distilled = GetBool(root, "distilled", source) ?? false;
        int imageSize = Required("img_size");
        var config = new ModelConfig
        {
            Architecture = GetString(root, "architecture", source) ?? "vit_custom",
            ImageSize = imageSize,
            PatchSize = Required("patch_size"),
            EmbedDim = embedDim,
            Depth = Required("depth"),
            NumHeads = Required("num_heads"),
            MlpHidden = (int)(embedDim * (GetDouble(root, "mlp_ratio", source) ?? 4.0)),
            NumClasses = Required("num_classes"),
            ClassToken = classToken,
            Distilled = distilled,
            GlobalPool = pool,
            FcNorm = GetBool(root, "fc_norm", source) ?? pool == GlobalPool.Avg,
            QkvBias = GetBool(root, "qkv_bias", source) ?? true,
            LayerScale = GetBool(root, "layer_scale", source) ?? GetDouble(root, "init_values", source) is not null,
            RegTokens = GetInt(root, "reg_tokens", source) ?? 0,
            NoEmbedClass = GetBool(root, "no_embed_class", source) ?? false,
            Preprocess = ReadPreprocess(root, imageSize, distilled ? "deit" : "vit", source),
            LabelNames = Labels(root, source),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>timm options the forward pass does not implement: refused by name rather than run wrongly.</summary>
    private static void RefuseUnsupported(JsonElement args, string source)
    {
        foreach (var option in (string[])["qk_norm", "pre_norm", "dynamic_img_size"])
            if (GetBool(args, option, source) is true)
                throw new InvalidModelException($"{source}: {option} is not supported by this engine");
    }

    /// <summary>The preprocessing family of a name the table does not know, from its prefix.</summary>
    private static string FamilyOf(string name) =>
        name.StartsWith("deit3", StringComparison.Ordinal) ? "deit3"
        : name.StartsWith("deit", StringComparison.Ordinal) ? "deit"
        : name.Split('.', 2)[0].EndsWith("dinov2", StringComparison.Ordinal) ? "dinov2"
        : "vit";

    private static PreprocessConfig ReadPreprocess(JsonElement cfg, int imageSize, string family, string source)
    {
        // Only Google's ViTs (AugReg) normalize with 0.5; DeiT, DeiT III, DINOv2 and MAE use ImageNet statistics.
        bool deit = family != "vit";
        var interpolation = GetString(cfg, "interpolation", source) ?? "bicubic";
        var cropMode = GetString(cfg, "crop_mode", source) ?? "center";
        return new PreprocessConfig
        {
            ImgSize = imageSize,
            CropPct = GetDouble(cfg, "crop_pct", source) ?? (deit ? 0.875 : 0.9),
            Interpolation = interpolation switch
            {
                "bicubic" => ResampleFilter.Bicubic,
                "bilinear" => ResampleFilter.Bilinear,
                _ => throw new InvalidModelException($"{source}: interpolation '{interpolation}' is not supported (expected bicubic or bilinear)"),
            },
            CropMode = cropMode switch
            {
                "center" => CropMode.Center,
                "squash" => CropMode.Squash,
                "border" => CropMode.Border,
                _ => throw new InvalidModelException($"{source}: crop_mode '{Clip(cropMode)}' is not supported (expected center, squash or border)"),
            },
            Mean = GetFloats(cfg, "mean", source) ?? (deit ? ImageNetMean : Half3),
            Std = GetFloats(cfg, "std", source) ?? (deit ? ImageNetStd : Half3),
        };
    }

    private static int? InputSize(JsonElement pre, string source)
    {
        if (pre.ValueKind != JsonValueKind.Object || !pre.TryGetProperty("input_size", out var s))
            return null;
        if (s.ValueKind != JsonValueKind.Array || s.GetArrayLength() != 3 || !s[1].TryGetInt32Safe(out int side) || !s[2].TryGetInt32Safe(out int other) || side != other)
            throw new InvalidModelException($"{source}: pretrained_cfg.input_size must be [3, S, S], found {Clip(s.GetRawText())}");
        return side;
    }

    private static GlobalPool ParsePool(string value, string source) => value switch
    {
        "token" => GlobalPool.Token,
        "avg" => GlobalPool.Avg,
        _ => throw new InvalidModelException($"{source}: global_pool '{value}' is not supported (expected 'token' or 'avg')"),
    };

    private static JsonDocument Parse(string json, string source, ModelLimits? limits)
    {
        try
        {
            var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = (limits ?? ModelLimits.Default).MaxJsonDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidModelException($"{source}: config must be a JSON object, found {doc.RootElement.ValueKind}");
            return doc;
        }
        catch (JsonException e)
        {
            throw new InvalidModelException($"{source}: config is not valid JSON ({e.Message})", e);
        }
    }

    private static bool Has(JsonElement obj, string field, out JsonElement value)
    {
        value = default;
        return obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null;
    }

    private static int? GetInt(JsonElement obj, string field, string source)
    {
        if (!Has(obj, field, out var v))
            return null;
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2 && v[0].TryGetInt32Safe(out int a) && v[1].TryGetInt32Safe(out int b) && a == b)
            return a; // timm writes square sizes as [S, S]
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
            throw new InvalidModelException($"{source}: field '{field}' must be an integer, found {Clip(v.GetRawText())}");
        return i;
    }

    private static double? GetDouble(JsonElement obj, string field, string source)
    {
        if (!Has(obj, field, out var v))
            return null;
        // 1e400 is valid JSON and reads as infinity.
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw new InvalidModelException($"{source}: field '{field}' must be a finite number, found {Clip(v.GetRawText())}");
        return d;
    }

    private static bool? GetBool(JsonElement obj, string field, string source)
    {
        if (!Has(obj, field, out var v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidModelException($"{source}: field '{field}' must be true or false, found {Clip(v.GetRawText())}"),
        };
    }

    private static string? GetString(JsonElement obj, string field, string source)
    {
        if (!Has(obj, field, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.String)
            throw new InvalidModelException($"{source}: field '{field}' must be a string, found {Clip(v.GetRawText())}");
        return v.GetString();
    }

    private static string[]? Labels(JsonElement obj, string source)
    {
        if (!Has(obj, "label_names", out var names))
            return null;
        if (names.ValueKind != JsonValueKind.Array)
            throw new InvalidModelException($"{source}: field 'label_names' must be an array of strings (one per class), found {Clip(names.GetRawText())}");
        var labels = new string[names.GetArrayLength()];
        int i = 0;
        foreach (var e in names.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw new InvalidModelException($"{source}: label_names[{i}] must be a string, found {Clip(e.GetRawText())}");
            labels[i++] = e.GetString()!;
        }
        return labels;
    }

    /// <summary>Hostile values can be megabytes long; messages quote only their start.</summary>
    private static string Clip(string raw) => raw.Length <= 80 ? raw : raw[..80] + "...";

    private static bool TryGetInt32Safe(this JsonElement e, out int value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out value);
    }

    private static float[]? GetFloats(JsonElement obj, string field, string source)
    {
        if (!Has(obj, field, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var x) || !double.IsFinite(x)))
            throw new InvalidModelException($"{source}: field '{field}' must be an array of finite numbers, found {Clip(v.GetRawText())}");
        return v.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
    }
}
