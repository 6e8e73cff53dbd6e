using System.Globalization;

namespace ToMe.Merging;

/// <summary>
/// How many tokens each block merges away, as ToMe's <c>parse_r</c> reads it: an int <c>r</c> (every layer),
/// <c>(r, inflect)</c> (a linear ramp; inflect −1 front-loads, +1 back-loads) or a per-layer list (padded with zeros; at most one entry per block).
/// The per-layer clamp <c>(T − protected) // 2</c> is applied at run time by <see cref="Clamp"/>.
/// </summary>
public sealed class MergeSchedule
{
    private readonly int? constant;
    private readonly (int R, double Inflect)? ramp;
    private readonly int[]? list;

    /// <summary>No merging (r = 0).</summary>
    public static MergeSchedule None { get; } = new(0, null, null);

    private MergeSchedule(int? constant, (int, double)? ramp, int[]? list)
    {
        this.constant = constant;
        this.ramp = ramp;
        this.list = list;
    }

    /// <summary>r tokens merged away in every block (ToMe's int <c>r</c>), fewer where the clamp allows less.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="r"/> is negative.</exception>
    public static MergeSchedule Constant(int r) => r >= 0 ? new(r, null, null) : throw new ArgumentOutOfRangeException(nameof(r), r, "r must be >= 0");

    /// <summary>
    /// ToMe's <c>(r, inflect)</c>: r per block on average, rising or falling linearly over the depth, from
    /// <c>r·(1 − inflect)</c> at the first block to <c>r·(1 + inflect)</c> at the last; inflect −1 merges most in the
    /// first blocks, +1 in the last, 0 is <see cref="Constant"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="r"/> is negative or <paramref name="inflect"/> is outside [−1, 1].</exception>
    public static MergeSchedule Ramp(int r, double inflect) =>
        r >= 0 && inflect is >= -1 and <= 1 ? new(null, (r, inflect), null)
            : throw new ArgumentOutOfRangeException(nameof(inflect), $"(r, inflect) needs r >= 0 and -1 <= inflect <= 1, got ({r}, {inflect})");

    /// <summary>
    /// One r per block, first block first; a shorter list merges nothing in the blocks after it. A list longer than the
    /// model's depth is refused when the engine loads (it was written for another model).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An entry is negative.</exception>
    public static MergeSchedule PerLayer(IEnumerable<int> rs)
    {
        ArgumentNullException.ThrowIfNull(rs);
        var array = rs.ToArray();
        if (array.Any(r => r < 0))
            throw new ArgumentOutOfRangeException(nameof(rs), "every r in the list must be >= 0");
        return new(null, null, array);
    }

    /// <summary>Parses <c>13</c>, <c>16,-0.5</c> / <c>(16,-0.5)</c>, or <c>[8,8,4,0]</c> (what <see cref="ToString"/> writes).</summary>
    /// <exception cref="FormatException">Not a schedule, or a value out of range; the message shows the three forms.</exception>
    public static MergeSchedule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim();
        try
        {
            if (s.StartsWith('['))
            {
                if (!s.EndsWith(']'))
                    throw new FormatException("a list must end with ']'");
                var inner = s[1..^1].Trim();
                return PerLayer(inner.Length == 0 ? [] : inner.Split(',').Select(x => int.Parse(x.Trim(), CultureInfo.InvariantCulture)));
            }
            if (s.StartsWith('(') && s.EndsWith(')'))
                s = s[1..^1];
            var parts = s.Split(',');
            if (parts.Length == 1)
                return Constant(int.Parse(parts[0].Trim(), CultureInfo.InvariantCulture));
            if (parts.Length == 2)
                return Ramp(int.Parse(parts[0].Trim(), CultureInfo.InvariantCulture), double.Parse(parts[1].Trim(), CultureInfo.InvariantCulture));
            throw new FormatException("expected one or two numbers");
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentOutOfRangeException)
        {
            throw new FormatException($"merge schedule '{text}': {ErrorText.Plain(e)} (expected r like 13, (r, inflect) like 16,-0.5, or a list like [8,8,4,0])", e);
        }
    }

    /// <summary>The scheduled r of every layer, before the run-time clamp (ToMe's <c>parse_r</c>, same float arithmetic).</summary>
    /// <exception cref="ArgumentException">A per-layer list has more entries than the model has blocks.</exception>
    public int[] ForLayers(int layers)
    {
        // ToMe pads a short list and never reads the tail of a long one; a tail that no block reads is a schedule
        // written for another model, so it is refused rather than dropped.
        if (list is not null && list.Length > layers)
            throw new ArgumentException($"merge schedule {this}: {list.Length} per-layer entries, but the model has {layers} blocks (give at most {layers})");
        if (list is not null)
            return Enumerable.Range(0, layers).Select(l => l < list.Length ? list[l] : 0).ToArray();
        if (constant is int c)
            return Enumerable.Repeat(c, layers).ToArray();
        var (r, inflect) = ramp!.Value;
        int min = (int)(r * (1.0 - inflect));
        int max = 2 * r - min;
        double step = layers > 1 ? (max - min) / (double)(layers - 1) : 0;
        return Enumerable.Range(0, layers).Select(l => (int)(min + step * l)).ToArray();
    }

    /// <summary>The run-time clamp: at most half the unprotected tokens merge in one layer.</summary>
    public static int Clamp(int r, int tokens, int protectedTokens) => Math.Max(0, Math.Min(r, (tokens - protectedTokens) / 2));

    /// <summary>Tokens entering each block and the r each block applies, given the tokens after the embedding.</summary>
    public (int[] TokensPerLayer, int[] RPerLayer, int FinalTokens) Plan(int layers, int tokens, int protectedTokens)
    {
        var scheduled = ForLayers(layers);
        var entering = new int[layers];
        var applied = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            entering[l] = tokens;
            applied[l] = Clamp(scheduled[l], tokens, protectedTokens);
            tokens -= applied[l];
        }
        return (entering, applied, tokens);
    }

    /// <summary>The schedule as <see cref="Parse"/> reads it: <c>13</c>, <c>(16,-0.5)</c> or <c>[8,8,4,0]</c>.</summary>
    public override string ToString() =>
        list is not null ? "[" + string.Join(",", list) + "]"
        : constant is int c ? c.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"({ramp!.Value.R},{ramp.Value.Inflect})");
}
