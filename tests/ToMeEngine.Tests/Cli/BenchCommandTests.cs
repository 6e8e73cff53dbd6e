using System.Text.Json;
using ToMe.Tests.Support;

namespace ToMe.Tests.Cli;

/// <summary>The bench command's table and its stable JSON (timings themselves are not asserted).</summary>
public class BenchCommandTests
{
    [Fact]
    public void JsonHasOneResultPerScheduleWithTokensAndCost()
    {
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "2", "--r", "0,13", "--r", "[60,0,0]", "--runs", "1", "--warmup", "0", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal("cpu", root.GetProperty("backend").GetString());
        var results = root.GetProperty("results");
        Assert.Equal(3, results.GetArrayLength());
        Assert.Equal([257, 218, 197], results.EnumerateArray().Select(r => r.GetProperty("final_tokens").GetInt32()));
        Assert.Equal(1.0, results[0].GetProperty("speedup_over_baseline").GetDouble());
        foreach (var name in new[] { "milliseconds_per_batch", "images_per_second", "giga_multiply_adds_per_image", "achieved_giga_flops", "merge", "schedule" })
            Assert.True(results[1].TryGetProperty(name, out _), name);
        // Fewer tokens, fewer multiply-adds.
        Assert.True(results[1].GetProperty("giga_multiply_adds_per_image").GetDouble() < results[0].GetProperty("giga_multiply_adds_per_image").GetDouble());
    }

    [Fact]
    public void ImagesModeReportsTheDecodeAndForwardRatesAndWhichBounds()
    {
        var folder = RepoData.Path("images");
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu", "--images", folder,
            "--batch", "2", "--r", "0", "--decode-threads", "2", "--limit", "5", "--precision", "auto", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("cpu", json.RootElement.GetProperty("backend").GetString());
        Assert.Equal("fp32", json.RootElement.GetProperty("precision").GetString());   // auto, resolved
        var row = Assert.Single(json.RootElement.GetProperty("results").EnumerateArray());
        Assert.Equal(5, row.GetProperty("images").GetInt32());
        Assert.Equal(2, row.GetProperty("decode_threads").GetInt32());
        double decode = row.GetProperty("decode_images_per_second").GetDouble(), forward = row.GetProperty("forward_images_per_second").GetDouble();
        Assert.True(decode > 0 && forward > 0 && row.GetProperty("images_per_second").GetDouble() > 0);
        Assert.Equal(decode < forward ? "decode" : "forward", row.GetProperty("bound_by").GetString());

        (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu", "--images", folder,
            "--batch", "2", "--r", "0", "--limit", "3");
        Assert.True(code == 0, stderr);
        Assert.Contains("| decode images/s | forward images/s | end to end images/s | bound by |", stdout);

        (code, _, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "gpu", "--images", folder, "--limit", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("--backend 'gpu' is not available", stderr);
    }

    [Fact]
    public void JsonWithoutABaselineRunHasNoSpeedup()
    {
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "1", "--r", "8", "--runs", "1", "--warmup", "0", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("results")[0].GetProperty("speedup_over_baseline").ValueKind);
    }

    [Fact]
    public void ProfileCountsEveryOpOfTheForward()
    {
        // vit_p14_d3: 3 blocks; r = [60,0,0] merges in block 0 only. One thread runs the batch as one, every op once.
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "2", "--r", "[60,0,0]", "--runs", "2", "--warmup", "0", "--json", "--profile", "--threads", "1");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var result = json.RootElement.GetProperty("results")[0];
        var ops = result.GetProperty("profile").EnumerateArray()
            .ToDictionary(o => o.GetProperty("op").GetString()!, o => (Calls: o.GetProperty("calls_per_forward").GetDouble(), Ms: o.GetProperty("milliseconds_per_forward").GetDouble()));
        Assert.Equal(1, ops["patch embed"].Calls);
        Assert.Equal(2 * 3 + 1, ops["layer norm"].Calls);
        foreach (var name in new[] { "linear qkv", "attention", "linear proj + residual", "linear fc1 + GELU", "linear fc2 + residual" })
            Assert.Equal(3, ops[name].Calls);
        Assert.Equal(1, ops["merge: bipartite match"].Calls);
        Assert.Equal(1, ops["merge: weighted average"].Calls);
        Assert.Equal(1, ops["head"].Calls);
        Assert.All(ops.Where(o => !o.Key.StartsWith("outside", StringComparison.Ordinal)), o => Assert.True(o.Value.Ms >= 0, o.Key));
        // The ops are timed inside the forwards: on average they take no longer than the slower of the two runs, which
        // is what the median of two runs reports.
        Assert.True(ops.Where(o => !o.Key.StartsWith("outside", StringComparison.Ordinal)).Sum(o => o.Value.Ms)
            <= result.GetProperty("milliseconds_per_batch").GetDouble() * 1.001);
    }

    [Fact]
    public void ProfileOfImagesInParallelCountsEveryImagesOpsAsThreadTime()
    {
        // Two threads run batch 2 one image per thread: every op once per image, timed on its thread.
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "2", "--r", "[60,0,0]", "--runs", "2", "--warmup", "0", "--json", "--profile", "--threads", "2");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var result = json.RootElement.GetProperty("results")[0];
        Assert.Equal(2, result.GetProperty("profile_threads").GetInt32());
        var ops = result.GetProperty("profile").EnumerateArray()
            .ToDictionary(o => o.GetProperty("op").GetString()!, o => (Calls: o.GetProperty("calls_per_forward").GetDouble(), Ms: o.GetProperty("milliseconds_per_forward").GetDouble()));
        Assert.Equal(2, ops["patch embed"].Calls);
        Assert.Equal(2 * (2 * 3 + 1), ops["layer norm"].Calls);
        foreach (var name in new[] { "linear qkv", "attention", "linear proj + residual", "linear fc1 + GELU", "linear fc2 + residual" })
            Assert.Equal(2 * 3, ops[name].Calls);
        Assert.Equal(2, ops["merge: bipartite match"].Calls);
        Assert.Equal(2, ops["head"].Calls);
        Assert.True(ops.Where(o => !o.Key.StartsWith("outside", StringComparison.Ordinal)).Sum(o => o.Value.Ms)
            <= 2 * result.GetProperty("milliseconds_per_batch").GetDouble() * 1.001);
        var (tableCode, table, tableErr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "2", "--r", "0", "--runs", "1", "--warmup", "0", "--profile", "--threads", "2");
        Assert.True(tableCode == 0, tableErr);
        Assert.Contains("thread-time summed over the 2 threads", table);
        Assert.Contains("| op | calls/forward | thread-ms/forward | % of forward |", table);
    }

    [Fact]
    public void TableListsEveryStrategyRun()
    {
        var (code, stdout, stderr) = TomeProcess.Run("bench", "--model", Fixtures.ModelPath("vit_p14_d3"), "--backend", "cpu",
            "--batch", "1", "--r", "0", "--merge", "kth", "--k", "2", "--runs", "1", "--warmup", "0");
        Assert.True(code == 0, stderr);
        Assert.Contains("| merge | r | final tokens |", stdout);
        Assert.Contains("| kth(k=2) |", stdout);
    }
}
