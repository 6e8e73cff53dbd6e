using System.Globalization;
using System.Text;
using System.Text.Json;
using ToMe.Benchmarking;
using ToMe.Merging;

namespace ToMe.Cli.Commands;

/// <summary><c>tome eval</c> with several <c>--r</c> or <c>--merge</c>: the accuracy/speed table of the variants (see <see cref="ScheduleSweep"/>).</summary>
internal static class EvalSweep
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// The rows to run: every strategy at every schedule, in the order given; a strategy that reads no schedule (kth,
    /// ToMato, none) once. Several schedules with no strategy that reads them are refused.
    /// </summary>
    public static IReadOnlyList<(MergeStrategy Strategy, MergeSchedule Schedule)> Variants(IReadOnlyList<MergeStrategy> strategies,
        IReadOnlyList<MergeSchedule> schedules)
    {
        if (schedules.Count > 1 && !strategies.Any(s => s.UsesSchedule))
            throw new ArgumentException($"--r is given {schedules.Count} times, but --merge {string.Join(", ", strategies)} takes no schedule");
        return strategies.SelectMany(st => st.UsesSchedule ? schedules.Select(s => (st, s)) : [(st, MergeSchedule.Constant(0))]).ToArray();
    }

    public static int Run(ToMeEngine engine, string dir, IReadOnlyList<(string Path, int Label)> samples,
        IReadOnlyList<(MergeStrategy Strategy, MergeSchedule Schedule)> variants, int batch, string? outputPath, bool asJson)
    {
        var inv = CultureInfo.InvariantCulture;
        var names = variants.Select(v => v.Strategy.UsesSchedule ? v.Schedule.ToString() : "-").ToArray();
        var csv = outputPath is null ? null : new StringBuilder("merge,schedule,filename,true_index,pred1,pred2,pred3,pred4,pred5,prob1\n");
        int bad = 0;
        bool terminal = !Console.IsErrorRedirected;
        var rows = ScheduleSweep.Run(engine, samples, variants, batch,
            skipped: (path, error) =>
            {
                bad++;
                Console.Error.WriteLine($"{(terminal ? "\r" : "")}skipped {path}: {error.Message}");
            },
            predicted: p => csv?.Append(string.Create(inv,
                $"{Csv.Field(variants[p.Row].Strategy.ToString())},{Csv.Field(names[p.Row])},{CsvName(dir, p.Path)},{p.Label},{string.Join(",", Enumerable.Range(0, 5).Select(i => i < p.Top5.Count ? p.Top5[i].ClassIndex.ToString(inv) : ""))},{p.Top5[0].Probability:R}\n")),
            progress: seen =>
            {
                string line = $"{Progress(seen, samples.Count, bad)}, {variants.Count} variants";
                if (terminal)
                    Console.Error.Write($"\r{line}   ");
                else if (seen == samples.Count || seen / batch % 10 == 0)
                    Console.Error.WriteLine(line);
            });
        if (terminal)
            Console.Error.WriteLine();
        RequireAny(rows[0].Images, samples.Count);
        if (csv is not null)
            File.WriteAllText(outputPath!, csv.ToString());
        if (asJson)
        {
            Console.WriteLine(Json(engine, batch, bad, rows.Select((r, i) => new Row(r.Merge.ToString(), names[i], r.Images, r.FinalTokens,
                r.GigaMultiplyAddsPerImage, r.Top1Percent, r.Top5Percent, r.SameTop1AsFirstPercent, r.ImagesPerSecond, r.SpeedupOverFirst,
                r.SpeedupLowerQuartile, r.SpeedupUpperQuartile, ImagesPerSecondEndToEnd: null))));
            return 0;
        }
        string skipped = bad > 0 ? $" ({bad} unreadable, skipped)" : "";
        Console.WriteLine(string.Create(inv,
            $"{engine.Config.Architecture} ({engine.BackendName} {engine.Precision.Name()}), batch {batch}: {rows[0].Images} images{skipped}"));
        string first = variants[0].Strategy.UsesSchedule ? $"{variants[0].Strategy} r = {names[0]}" : variants[0].Strategy.ToString();
        Console.WriteLine($"| merge | r | final tokens | GFLOPs/image | top-1 | top-5 | same top-1 as {first} | images/s (forward) | speed-up (quartiles) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (r, i) in rows.Select((r, i) => (r, i)))
            Console.WriteLine(string.Create(inv,
                $"| {r.Merge} | {names[i]} | {Tokens(r.FinalTokens)} | {r.GigaMultiplyAddsPerImage:F3} | {r.Top1Percent:F2}% | {r.Top5Percent:F2}% | {r.SameTop1AsFirstPercent:F2}% | {r.ImagesPerSecond:F1} | {r.SpeedupOverFirst:F2}x ({r.SpeedupLowerQuartile:F2}–{r.SpeedupUpperQuartile:F2}) |"));
        Console.WriteLine("images/s: the forward passes alone, the rows interleaved batch by batch on the same decoded images; speed-up: the median");
        Console.WriteLine("over the batches of the first row's time over the row's on the same batch.");
        return 0;
    }

    /// <summary>
    /// One result of tome eval's JSON, the same fields for one schedule and for a comparison (a variant per row): null where
    /// the run did not measure it. A comparison times the forward passes alone (images_per_second); one schedule runs
    /// through the decoding pipeline and times the whole path (images_per_second_end_to_end); final tokens and GFLOPs of
    /// one ToMato run are null (they depend on the image, and the pipeline does not report them).
    /// </summary>
    public sealed record Row(string Merge, string Schedule, int Images, double? FinalTokens, double? GigaMultiplyAddsPerImage,
        double Top1Percent, double Top5Percent, double SameTop1AsFirstPercent, double? ImagesPerSecond, double SpeedupOverFirst,
        double SpeedupLowerQuartile, double SpeedupUpperQuartile, double? ImagesPerSecondEndToEnd);

    /// <summary>tome eval's JSON: the engine and run, then one result per variant.</summary>
    public static string Json(ToMeEngine engine, int batch, int skipped, IEnumerable<Row> results) =>
        JsonSerializer.Serialize(new
        {
            model = engine.Config.Architecture,
            backend = engine.BackendName,
            precision = engine.Precision.Name(),
            merge = engine.Options.Merge.ToString(),
            batch,
            skipped,
            results = results.ToArray(),
        }, JsonOptions);

    /// <summary>An image's name in the per-image CSV: its path under the images folder, so that equal names in two class folders differ.</summary>
    public static string CsvName(string dir, string path) => Csv.Field(Path.GetRelativePath(dir, path).Replace(Path.DirectorySeparatorChar, '/'));

    /// <summary>The progress line's count, with the images skipped so far.</summary>
    public static string Progress(int seen, int total, int skipped) =>
        skipped > 0 ? $"{seen}/{total} images ({skipped} skipped)" : $"{seen}/{total} images";

    /// <summary>No scored image is an error, not an accuracy of 0%.</summary>
    public static void RequireAny(int scored, int listed)
    {
        if (scored == 0)
            throw new InvalidDataException($"no image could be evaluated: all {listed} listed images were missing or unreadable");
    }

    private static string Tokens(double mean) =>
        mean == Math.Floor(mean) ? mean.ToString("F0", CultureInfo.InvariantCulture) : mean.ToString("F1", CultureInfo.InvariantCulture);
}
