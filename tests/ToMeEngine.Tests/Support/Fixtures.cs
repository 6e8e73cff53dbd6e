using System.Text.Json;
using ToMe.Merging;
using ToMe.Model;
using ToMe.Weights;

namespace ToMe.Tests.Support;

/// <summary>One case of a golden fixture: a schedule, prop-attn switch and timm + official ToMe's outputs.</summary>
public sealed record FixtureCase(string Key, MergeSchedule Schedule, bool PropAttn, int[] TokensPerLayer, int[] RPerLayer, int FinalTokens)
{
    public static MergeSchedule ParseR(JsonElement r) => r.ValueKind switch
    {
        JsonValueKind.Number => MergeSchedule.Constant(r.GetInt32()),
        JsonValueKind.Array when r.GetArrayLength() == 2 => MergeSchedule.Ramp(r[0].GetInt32(), r[1].GetDouble()),
        JsonValueKind.Array => MergeSchedule.PerLayer(r.EnumerateArray().Select(e => e.GetInt32())),
        _ => throw new FormatException($"unexpected r {r}"),
    };
}

/// <summary>
/// The golden fixtures: the ones shipped in TestData/fixtures, and the full set from ../shared/fixtures where present.
/// Models are loaded once per test run.
/// </summary>
internal static class Fixtures
{
    public static readonly string[] Shipped = ["vit_p14_d3", "deit_t4_distilled"];
    public static readonly string[] All = ["vit_t4", "deit_t4_distilled", "vit_p14_d3", "vit_avg_d3"];

    private static readonly Dictionary<string, ModelWeights> models = new();

    /// <summary>The folder holding MODEL.safetensors, or a skip naming what is missing.</summary>
    public static string Folder(string model)
    {
        var shipped = RepoData.Path("fixtures");
        if (File.Exists(Path.Combine(shipped, model + ".safetensors")))
            return shipped;
        return SharedData.Require("fixtures");
    }

    public static string ModelPath(string model) => Path.Combine(Folder(model), model + ".safetensors");

    public static string GoldenPath(string model) => Path.Combine(Folder(model), model + ".golden.safetensors");

    public static ModelWeights Model(string model)
    {
        lock (models)
        {
            if (!models.TryGetValue(model, out var weights))
                models[model] = weights = ModelLoader.Load(ModelPath(model));
            return weights;
        }
    }

    /// <summary>
    /// Opens one model × case of a golden fixture (skipping, naming what is missing, for the "(absent)" placeholder): the
    /// weights, the golden file (the caller disposes it), the case, its input batch and the forward options it was made with.
    /// </summary>
    public static OpenedCase Open(string model, string caseKey)
    {
        if (caseKey == "(absent)")
            Folder(model); // skips, naming what is missing
        var weights = Model(model);
        var golden = SafeTensorsFile.Open(GoldenPath(model));
        var fixture = Cases(golden).Single(c => c.Key == caseKey);
        return new OpenedCase(weights, golden, fixture, golden.ReadFloat32("input"), golden.Get("input").Shape[0]);
    }

    public static IReadOnlyList<FixtureCase> Cases(SafeTensorsFile golden)
    {
        using var doc = JsonDocument.Parse(golden.Metadata["cases"]);
        return doc.RootElement.EnumerateArray().Select(c => new FixtureCase(
            c.GetProperty("key").GetString()!,
            FixtureCase.ParseR(c.GetProperty("r")),
            c.GetProperty("prop_attn").GetBoolean(),
            c.GetProperty("tokens_per_layer").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("r_per_layer").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("final_tokens").GetInt32())).ToList();
    }

    /// <summary>Model × case pairs for theories; reads the case lists from the shipped manifest-equivalent metadata.</summary>
    public static TheoryData<string, string> AllCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var model in All)
        {
            string path;
            try
            {
                path = GoldenPath(model);
            }
            catch (Exception)
            {
                data.Add(model, "(absent)");
                continue;
            }
            using var golden = SafeTensorsFile.Open(path);
            foreach (var c in Cases(golden))
                data.Add(model, c.Key);
        }
        return data;
    }
}

/// <summary>A golden fixture case opened by <see cref="Fixtures.Open"/>; disposing it closes the golden file.</summary>
internal sealed record OpenedCase(ModelWeights Weights, SafeTensorsFile Golden, FixtureCase Case, float[] Input, int Batch) : IDisposable
{
    public ForwardOptions Options => new() { Schedule = Case.Schedule, ProportionalAttention = Case.PropAttn };

    public void Dispose() => Golden.Dispose();
}
