namespace ToMe;

/// <summary>
/// Numeric precision of the forward pass. <see cref="Float32"/> is the exact mode and the default: the reference every
/// other precision is measured against. A backend refuses a precision it does not run (see <see cref="PrecisionNames"/>
/// for the names the command line uses and the README for each one's measured agreement with fp32).
/// </summary>
public enum Precision
{
    /// <summary>float32 throughout (TF32 off on CUDA): matches timm within 1e-4.</summary>
    Float32,

    /// <summary>CUDA: float32 storage, GEMMs on tensor cores with TF32 inputs.</summary>
    TensorFloat32,

    /// <summary>CUDA: weights and activations stored in bfloat16, float32 accumulation.</summary>
    BFloat16,

    /// <summary>CUDA: weights and activations stored in float16, float32 accumulation.</summary>
    Float16,

    /// <summary>
    /// CPU: Linear layers in 8-bit integers (weights per output channel, activations quantized per row as each layer runs,
    /// int32 accumulation); attention, LayerNorm, softmax and merging stay float32.
    /// </summary>
    Int8,

    /// <summary>The backend's fast choice near float32 accuracy: on CUDA bf16 on sm_80 and newer, fp16 on sm_70/75; on the CPU float32.</summary>
    Auto,
}

/// <summary>The short names of <see cref="Precision"/> (fp32, tf32, bf16, fp16, int8, auto), parsed and printed in one place.</summary>
public static class PrecisionNames
{
    private static readonly (Precision Value, string Name)[] Table =
    [
        (Precision.Float32, "fp32"), (Precision.TensorFloat32, "tf32"), (Precision.BFloat16, "bf16"),
        (Precision.Float16, "fp16"), (Precision.Int8, "int8"), (Precision.Auto, "auto"),
    ];

    /// <summary>Every name, in the order the help text lists them.</summary>
    public static IReadOnlyList<string> All { get; } = Table.Select(t => t.Name).ToArray();

    /// <summary>fp32, tf32, bf16, fp16, int8 or auto (case-insensitive; float32, float16, bfloat16 are accepted too).</summary>
    /// <exception cref="FormatException">Not a precision name; the message lists the names.</exception>
    public static Precision Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var name = text.Trim().ToLowerInvariant() switch
        {
            "float32" => "fp32",
            "float16" or "half" => "fp16",
            "bfloat16" => "bf16",
            var other => other,
        };
        foreach (var (value, known) in Table)
            if (known == name)
                return value;
        throw new FormatException($"precision '{text}' is not one of {string.Join(", ", All)}");
    }

    /// <summary>The short name: fp32, tf32, bf16, fp16, int8 or auto.</summary>
    public static string Name(this Precision precision)
    {
        foreach (var (value, name) in Table)
            if (value == precision)
                return name;
        throw new ArgumentOutOfRangeException(nameof(precision), precision, "not a Precision");
    }
}
