using System.Text;

namespace ToMe.Serving.Http;

/// <summary>
/// OpenTelemetry names as Prometheus names, following the specification's Prometheus compatibility rules as
/// OpenTelemetry's own Prometheus exporter applies them, so that series keep their names
/// (<c>tome.forward.time</c> in ms is <c>tome_forward_time_milliseconds</c>, the counter <c>tome.images</c> is
/// <c>tome_images_total</c>).
/// </summary>
internal static class PrometheusNames
{
    /// <summary>
    /// The metric name: characters outside <c>[a-zA-Z0-9:]</c> become <c>_</c> (a run of them one <c>_</c>), the unit is
    /// appended unless the name already contains it, and a counter ends in <c>_total</c>.
    /// </summary>
    public static string Metric(string name, string? unit, bool counter)
    {
        var result = Sanitize(name, allowColon: true);
        var suffix = Unit(unit);
        if (suffix.Length > 0 && !result.Contains(suffix, StringComparison.Ordinal))
            result += "_" + suffix;
        if (counter && !result.EndsWith("_total", StringComparison.Ordinal))
            result += "_total";
        return result;
    }

    /// <summary>A label name: as <see cref="Metric"/> without the colon, which labels may not hold.</summary>
    public static string Label(string key) => Sanitize(key, allowColon: false);

    /// <summary>
    /// The unit as a name suffix: annotations (<c>{request}</c>) dropped, UCUM abbreviations spelt out (<c>ms</c>:
    /// <c>milliseconds</c>, <c>By</c>: <c>bytes</c>), <c>a/b</c> as <c>a_per_b</c>, <c>1</c> as nothing.
    /// </summary>
    public static string Unit(string? unit)
    {
        if (string.IsNullOrEmpty(unit))
            return "";
        var bare = RemoveAnnotations(unit);
        int slash = bare.IndexOf('/', StringComparison.Ordinal);
        var spelt = slash < 0 ? MapUnit(bare) : Per(MapUnit(bare[..slash]), MapPerUnit(bare[(slash + 1)..]));
        return spelt.Length == 0 ? "" : Sanitize(spelt, allowColon: false).Trim('_');
    }

    private static string Per(string unit, string per) =>
        per.Length == 0 ? unit : unit.Length == 0 ? "per_" + per : unit + "_per_" + per;

    private static string RemoveAnnotations(string unit)
    {
        if (!unit.Contains('{', StringComparison.Ordinal))
            return unit;
        var kept = new StringBuilder(unit.Length);
        int depth = 0;
        foreach (char c in unit)
        {
            if (c == '{')
                depth++;
            else if (c == '}' && depth > 0)
                depth--;
            else if (depth == 0)
                kept.Append(c);
        }
        return kept.ToString().Trim();
    }

    private static string MapUnit(string unit) => unit switch
    {
        "d" => "days", "h" => "hours", "min" => "minutes", "s" => "seconds", "ms" => "milliseconds", "us" => "microseconds",
        "ns" => "nanoseconds", "By" => "bytes", "KiBy" => "kibibytes", "MiBy" => "mebibytes", "GiBy" => "gibibytes",
        "TiBy" => "tibibytes", "KBy" => "kilobytes", "MBy" => "megabytes", "GBy" => "gigabytes", "TBy" => "terabytes",
        "B" => "bytes", "KB" => "kilobytes", "MB" => "megabytes", "GB" => "gigabytes", "TB" => "terabytes", "m" => "meters",
        "V" => "volts", "A" => "amperes", "J" => "joules", "W" => "watts", "g" => "grams", "Cel" => "celsius", "Hz" => "hertz",
        "1" => "", "%" => "percent", "$" => "dollars",
        _ => unit,
    };

    private static string MapPerUnit(string unit) => unit switch
    {
        "s" => "second", "m" => "minute", "h" => "hour", "d" => "day", "w" => "week", "mo" => "month", "y" => "year",
        _ => unit,
    };

    /// <summary>
    /// Runs of characters outside <c>[a-zA-Z0-9]</c> (and <c>:</c> where allowed) become one <c>_</c>; a leading digit gets
    /// a <c>_</c> before it. ASCII only: Prometheus rejects other letters. The result never starts with <c>__</c>, which
    /// Prometheus reserves.
    /// </summary>
    private static string Sanitize(string name, bool allowColon)
    {
        var result = new StringBuilder(name.Length + 1);
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
            result.Append('_');
        foreach (char c in name)
        {
            if (char.IsAsciiLetterOrDigit(c) || (allowColon && c == ':'))
                result.Append(c);
            else if (result.Length == 0 || result[^1] != '_')
                result.Append('_');
        }
        return result.ToString();
    }
}
