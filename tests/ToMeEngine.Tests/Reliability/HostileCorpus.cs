using System.Text;
using ToMe.Tests.Support;
using ToMe.Weights;

namespace ToMe.Tests.Reliability;

/// <summary>One hostile input: where it lives under TestData/hostile, how it is fed, and what must come out.</summary>
/// <param name="Kind">"model" (ToMeEngine.Load of the file or folder) or "image" (engine.Classify of the file).</param>
/// <param name="Exception">The exception's type name, or "none" where the input is odd but legal and must classify.</param>
/// <param name="Fragment">A piece of the message that shows the right check fired.</param>
public sealed record HostileCase(string Path, string Kind, string Exception, string Fragment);

/// <summary>
/// The deterministic generator of the committed hostile corpus (TestData/hostile): every file is built from
/// constants and the committed sample images, so regenerating gives identical bytes. Set
/// <c>TOME_REGENERATE_HOSTILE=1</c> and run <c>HostileCorpusTests.CorpusMatchesGenerator</c> to rewrite it.
/// </summary>
internal static partial class HostileCorpus
{
    public const string Folder = "hostile";

    /// <summary>Every file of the corpus with its bytes; a folder case lists each of its files.</summary>
    public static IEnumerable<(HostileCase Case, IReadOnlyList<(string Name, byte[] Bytes)> Files)> Generate() =>
        Models().Concat(Configs()).Concat(Images());

    private const string InvalidModel = nameof(InvalidModelException);
    private const string InvalidImage = nameof(global::ToMe.Imaging.InvalidImageException);

    private static (HostileCase, IReadOnlyList<(string, byte[])>) File(string name, string kind, string exception, string fragment, byte[] bytes) =>
        (new HostileCase(name, kind, exception, fragment), [(name, bytes)]);

    private static (HostileCase, IReadOnlyList<(string, byte[])>) ModelFile(string name, string fragment, byte[] bytes) =>
        File(name + ".safetensors", "model", InvalidModel, fragment, bytes);

    // A complete, valid model small enough to commit many variants of: 8x8 input, 4 patches, width 8, one block.
    internal const string TinyConfig =
        """{"img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "num_classes": 4, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop_pct": 0.875, "interpolation": "bicubic"}""";

    internal static SafeTensorsWriter TinyModel(string? config = TinyConfig, Func<string, bool>? keep = null)
    {
        var writer = new SafeTensorsWriter();
        if (config is not null)
            writer.AddMetadata("config", config);
        var parsed = global::ToMe.Model.ModelConfigReader.FromEmbeddedConfig(TinyConfig, "tiny");
        int seed = 1;
        foreach (var (name, shape) in global::ToMe.Model.ModelWeights.Expected(parsed))
        {
            if (keep is not null && !keep(name))
                continue;
            var values = new float[shape.Aggregate(1, (a, d) => a * d)];
            for (int i = 0; i < values.Length; i++)
                values[i] = ((seed++ * 7919) % 200 - 100) / 400f;
            writer.Add(name, shape, values);
        }
        return writer;
    }

    /// <summary>A safetensors file with this header text and some zero data bytes after it.</summary>
    internal static byte[] Raw(string header, int dataBytes = 8, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    private static string Entry(string name, string dtype, string shape, string offsets) =>
        "{\"" + name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape + ", \"data_offsets\": " + offsets + "}}";

    private static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Models()
    {
        var good = TinyModel().ToArray();
        ulong headerLength = BitConverter.ToUInt64(good, 0);
        yield return ModelFile("st_empty", "truncated", []);
        yield return ModelFile("st_three_bytes", "truncated", [1, 2, 3]);
        yield return ModelFile("st_header_length_max", "exceeds", Raw("{}", declaredLength: ulong.MaxValue));
        yield return ModelFile("st_header_length_past_end", "past the end of the file", Raw("{}", declaredLength: 1_000_000));
        yield return ModelFile("st_header_length_one", "too small", Raw("{}", declaredLength: 1));
        yield return ModelFile("st_not_json", "not valid JSON", Raw("this is not json"));
        yield return ModelFile("st_json_array", "must be a JSON object", Raw("[1, 2, 3]"));
        yield return ModelFile("st_deep_json", "not valid JSON", Raw("{\"__metadata__\": {\"x\": " + Nested(100) + "}}"));
        yield return ModelFile("st_bad_dtype", "unsupported dtype", Raw(Entry("w", "F8_E4M3", "[2]", "[0, 2]")));
        yield return ModelFile("st_negative_shape", "non-negative", Raw(Entry("w", "F32", "[-1]", "[0, 4]")));
        yield return ModelFile("st_shape_overflow", "too large", Raw(Entry("w", "F32", "[2147483647, 2147483647, 2147483647]", "[0, 8]")));
        yield return ModelFile("st_shape_times_dtype_overflow", "more than 2^63", Raw(Entry("w", "F64", "[2147483647, 2147483647]", "[0, 8]")));
        yield return ModelFile("st_shape_bytes_mismatch", "needs 12 bytes", Raw(Entry("w", "F32", "[3]", "[0, 8]")));
        yield return ModelFile("st_offsets_reversed", "begin <= end", Raw(Entry("w", "F32", "[2]", "[8, 0]")));
        yield return ModelFile("st_offsets_past_end", "past the end of the data", Raw(Entry("w", "F32", "[4]", "[0, 16]")));
        yield return ModelFile("st_offsets_huge", "past the end of the data", Raw(Entry("w", "U8", "[8]", "[9223372036854775800, 9223372036854775807]")));
        yield return ModelFile("st_offsets_float", "must be integers", Raw(Entry("w", "U8", "[4]", "[0.5, 4.5]")));
        yield return ModelFile("st_offsets_strings", "must be integers", Raw(Entry("w", "U8", "[4]", "[\"0\", \"4\"]")));
        yield return ModelFile("st_offsets_missing", "data_offsets", Raw("""{"w": {"dtype": "F32", "shape": [2]}}"""));
        yield return ModelFile("st_nine_dims", "dimensions", Raw(Entry("w", "U8", "[1, 1, 1, 1, 1, 1, 1, 1, 1]", "[0, 1]")));
        yield return ModelFile("st_overlap", "overlap", Raw(
            """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"""));
        yield return ModelFile("st_duplicate_tensor", "appears twice", Raw(
            """{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"""));
        yield return ModelFile("st_metadata_not_object", "__metadata__ must be an object", Raw("""{"__metadata__": [1]}"""));
        yield return ModelFile("st_metadata_config_number", "must be a string", Raw("""{"__metadata__": {"config": 5}}"""));
        yield return ModelFile("st_lone_surrogate_name", "malformed header", Raw(Entry("\\ud800", "U8", "[1]", "[0, 1]")));
        yield return ModelFile("st_truncated_header", "past the end of the file", good[..(int)(8 + headerLength / 2)]);
        yield return ModelFile("st_truncated_data", "past the end of the data", good[..(good.Length - 5)]);
        yield return ModelFile("st_no_config", "no model configuration", TinyModel(config: null).ToArray());
        yield return ModelFile("st_missing_tensor", "missing tensor 'blocks.0.mlp.fc2.bias'", TinyModel(keep: n => n != "blocks.0.mlp.fc2.bias").ToArray());
        yield return ModelFile("st_wrong_shape", "has shape [4, 7]", TinyModel(keep: n => n != "head.weight").Add("head.weight", [4, 7], new float[28]).ToArray());
        yield return ModelFile("st_wrong_dtype", "expected F32, F16 or BF16", TinyModel(keep: n => n != "head.bias").Add("head.bias", [4], new int[4]).ToArray());
        yield return ModelFile("st_extra_tensor", "unexpected tensor 'blocks.0.extra'", TinyModel().Add("blocks.0.extra", [1], new float[1]).ToArray());
    }

    private static (HostileCase, IReadOnlyList<(string, byte[])>) Embedded(string name, string fragment, string config) =>
        ModelFile(name, fragment, TinyModel(config).ToArray());

    private static string Tweak(string field, string value)
    {
        var start = TinyConfig.IndexOf($"\"{field}\": ", StringComparison.Ordinal);
        if (start < 0)
            return TinyConfig.Replace("}", $", \"{field}\": {value}}}");
        var valueStart = start + field.Length + 4;
        var end = TinyConfig[valueStart] == '[' ? TinyConfig.IndexOf(']', valueStart) + 1 : TinyConfig.IndexOfAny([',', '}'], valueStart);
        return TinyConfig[..valueStart] + value + TinyConfig[end..];
    }

    /// <summary>A hub-layout folder: a config.json and a small valid safetensors without an embedded config.</summary>
    private static (HostileCase, IReadOnlyList<(string, byte[])>) HubFolder(string name, string fragment, string? config, string exception = InvalidModel)
    {
        var files = new List<(string, byte[])>();
        if (config is not null)
            files.Add(($"{name}/config.json", Encoding.UTF8.GetBytes(config)));
        files.Add(($"{name}/model.safetensors", TinyModel(config: null).ToArray()));
        return (new HostileCase(name, "model", exception, fragment), files);
    }

    private static IEnumerable<(HostileCase, IReadOnlyList<(string, byte[])>)> Configs()
    {
        yield return Embedded("cfg_not_json", "config is not valid JSON", "{\"img_size\": ");
        yield return Embedded("cfg_missing_depth", "missing field 'depth'", TinyConfig.Replace("\"depth\": 1, ", ""));
        yield return Embedded("cfg_huge_depth", "depth 1000000000 must be in 1..256", Tweak("depth", "1000000000"));
        yield return Embedded("cfg_huge_embed_dim", "embed_dim 2000000000 exceeds", Tweak("embed_dim", "2000000000").Replace("\"num_heads\": 2", "\"num_heads\": 1"));
        yield return Embedded("cfg_huge_img_size", "img_size 1048576 exceeds", Tweak("img_size", "1048576").Replace("\"patch_size\": 4", "\"patch_size\": 1"));
        yield return Embedded("cfg_too_many_tokens", "tokens", Tweak("img_size", "4096").Replace("\"patch_size\": 4", "\"patch_size\": 1"));
        yield return Embedded("cfg_mlp_ratio_huge", "mlp hidden size", Tweak("mlp_ratio", "1e300"));
        yield return Embedded("cfg_mlp_ratio_beyond_double", "must be a finite number", Tweak("mlp_ratio", "1e400"));
        yield return Embedded("cfg_depth_string", "must be an integer", Tweak("depth", "\"12\""));
        yield return Embedded("cfg_depth_fraction", "must be an integer", Tweak("depth", "1.5"));
        yield return Embedded("cfg_crop_pct_tiny", "crop_pct", Tweak("crop_pct", "1e-9"));
        yield return Embedded("cfg_mean_infinite", "mean entries must be finite", Tweak("mean", "[1e300, 0.5, 0.5]"));
        yield return Embedded("cfg_std_zero", "std entries must be positive", Tweak("std", "[0, 0.5, 0.5]"));
        yield return Embedded("cfg_label_names_numbers", "label_names[0] must be a string", Tweak("label_names", "[1, 2, 3, 4]"));
        yield return Embedded("cfg_label_names_count", "label_names has 2 entries", Tweak("label_names", "[\"a\", \"b\"]"));
        yield return Embedded("cfg_deep_json", "not valid JSON", Tweak("extra", Nested(200)));
        yield return Embedded("cfg_bad_interpolation", "interpolation 'lanczos'", Tweak("interpolation", "\"lanczos\""));
        yield return Embedded("cfg_negative_classes", "num_classes -4 must be positive", Tweak("num_classes", "-4"));
        yield return HubFolder("hub_not_json", "not valid JSON", "{{{{");
        yield return HubFolder("hub_unknown_architecture", "unknown architecture 'resnet50'", """{"architecture": "resnet50", "num_classes": 4}""");
        yield return HubFolder("hub_input_size_mixed", "input_size must be [3, S, S]",
            """{"architecture": "vit_tiny_patch16_224", "pretrained_cfg": {"input_size": [3, 224, "x"]}}""");
        yield return HubFolder("hub_img_size_pair_mixed", "must be an integer",
            """{"architecture": "vit_tiny_patch16_224", "model_args": {"img_size": [224, "a"]}}""");
        yield return HubFolder("hub_deep_json", "not valid JSON", "{\"architecture\": \"vit_tiny_patch16_224\", \"x\": " + Nested(100) + "}");
        yield return HubFolder("hub_huge_num_classes", "num_classes 2000000000 exceeds", """{"architecture": "vit_tiny_patch16_224", "num_classes": 2000000000}""");
        yield return HubFolder("hub_mlp_ratio_string", "must be a finite number",
            """{"architecture": "vit_tiny_patch16_224", "model_args": {"mlp_ratio": "4"}}""");
        yield return HubFolder("hub_valid_config_wrong_weights", "expected [192, 3, 16, 16]", """{"architecture": "vit_tiny_patch16_224", "num_classes": 4}""");
        yield return HubFolder("hub_missing_config", "config.json is missing", null, nameof(FileNotFoundException));
    }
}
