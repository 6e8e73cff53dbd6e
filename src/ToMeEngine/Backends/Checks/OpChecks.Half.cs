namespace ToMe.Backends.Checks;

// The ops of bf16 and fp16 passes: LayerNorm rounding its output to half, the Linear layers on half operands (the GELU
// epilogue's gelu_cast among them), the patch embedding (patch_unfold into a tensor-core GEMM), and attention on half
// qkv with the merge metric and the class row in fp32. The CPU twin runs in fp32 on the values the device holds (inputs
// and weights rounded to the half type), so what remains is the device's own rounding and summation order. u is the
// unit roundoff of the type an output is stored in: 2⁻⁸ bf16, 2⁻¹¹ fp16 (an output rounded once to half is within u,
// relative); fp32 outputs differ by the order of fp32 sums only.
internal static partial class OpChecks
{
    private static double Unit(Precision precision) => precision == Precision.BFloat16 ? 1.0 / 256 : 1.0 / 2048;

    private static OpCheck Check(string op, Precision precision, FormattableString @case, Action<OpCheckPair> body) =>
        new(op, F($"{precision.Name()} {@case}"), body, precision);

    private static IEnumerable<OpCheck> HalfChecks()
    {
        // A local, not a static field: OpChecks.All, initialized first, calls this.
        foreach (var p in new[] { Precision.Float16, Precision.BFloat16 })
        {
            foreach (var (rows, c) in new[] { (1, 192), (2, 67), (197, 192), (577, 64), (1025, 33) })
                yield return Check("layer_norm", p, $"{rows}x{c}", pair => HalfLayerNorm(pair, p, rows, c));
            foreach (var (rows, k, n, e) in new[] { (1, 64, 24, 0), (2, 72, 40, 1), (197, 64, 48, 2), (197, 40, 24, 1), (577, 32, 16, 0), (1025, 24, 8, 1) })
                yield return Check("linear", p, $"{rows}x{k}->{n} {(LinearEpilogue)e}", pair => HalfLinear(pair, p, rows, k, n, (LinearEpilogue)e));
            foreach (var (b, t, h, d, mode, cls) in new[]
            {
                (1, 1, 3, 64, SizeMode.Random, true), (2, 197, 3, 64, SizeMode.Random, true), (1, 577, 2, 64, SizeMode.WithZeros, false),
                (3, 65, 1, 64, SizeMode.None, true), (1, 1025, 2, 64, SizeMode.Random, true), (1, 197, 2, 32, SizeMode.Random, true),
                (2, 198, 2, 128, SizeMode.WithZeros, true),
            })
                yield return Check("attention", p, $"B={b} T={t} H={h} D={d} sizes={mode.ToString().ToLowerInvariant()}{(cls ? " +class row" : "")}",
                    pair => HalfAttention(pair, p, b, t, h, d, mode, cls));
        }
        // A bf16 pass embeds patches in TF32 (LinearLayer.DefaultPrecision), an fp16 pass in fp16.
        foreach (var (p, b, prefix) in new[] { (Precision.Float16, 1, 1), (Precision.Float16, 2, 3), (Precision.TensorFloat32, 3, 2) })
            yield return Check("patch_embed", p, $"B={b} S=28 P=14 prefix={prefix}", pair => HalfPatchEmbed(pair, p, b, prefix));
    }

    private static void HalfLayerNorm(OpCheckPair pair, Precision precision, int rows, int channels)
    {
        var x = pair.Floats(OpCheckPair.Random(rows * channels, seed: rows, scale: 3f));
        var weight = pair.Floats(OpCheckPair.Random(channels, seed: 5, scale: 2f));
        var bias = pair.Floats(OpCheckPair.Random(channels, seed: 6));
        var y = pair.ActivationOutput(rows * channels, precision);

        pair.Cpu.LayerNorm(x.Cpu, weight.Cpu, bias.Cpu, rows, channels, 1e-6f, y.Cpu);
        pair.Device.LayerNorm(x.Device, weight.Device, bias.Device, rows, channels, 1e-6f, y.Device);

        int n = rows * channels;
        pair.Close(pair.ReadCpu(y.Cpu, n), pair.ReadDevice(y.Device, n, "y"), 1e-5f, (float)Unit(precision) + 1e-5f, "y");
    }

    /// <summary>Bias and BiasGelu write half (BiasGelu through the fp32 product and gelu_cast); BiasAccumulate adds into fp32.</summary>
    private static void HalfLinear(OpCheckPair pair, Precision precision, int rows, int inFeatures, int outFeatures, LinearEpilogue epilogue)
    {
        var linear = pair.Linear(OpCheckPair.Random(outFeatures * inFeatures, seed: 7, scale: 0.3f), outFeatures, inFeatures,
            OpCheckPair.Random(outFeatures, seed: 8), precision);
        var x = pair.Activations(OpCheckPair.Random(rows * inFeatures, seed: rows + 1), precision);
        bool accumulate = epilogue == LinearEpilogue.BiasAccumulate;
        var y = accumulate ? pair.Floats(OpCheckPair.Random(rows * outFeatures, seed: 9, scale: 4f)) : pair.ActivationOutput(rows * outFeatures, precision);

        pair.Cpu.Linear(x.Cpu, linear.Cpu, rows, epilogue, y.Cpu);
        pair.Device.Linear(x.Device, linear.Device, rows, epilogue, y.Device);

        int n = rows * outFeatures;
        float rtol = accumulate ? 1e-5f : (float)Unit(precision) + 1e-5f;
        pair.Close(pair.ReadCpu(y.Cpu, n), pair.ReadDevice(y.Device, n, "y"), 1e-4f, rtol, "y");
    }

    private static void HalfPatchEmbed(OpCheckPair pair, Precision precision, int batch, int prefixTokens)
    {
        const int size = 28, patch = 14, channels = 24, k = 3 * patch * patch;
        int tokens = prefixTokens + 4;
        var linear = pair.Linear(OpCheckPair.Random(channels * k, seed: 12, scale: 0.1f), channels, k, OpCheckPair.Random(channels, seed: 13), precision);
        // The CPU twin sees fp16 pixels as the fp16 GEMM does; TF32 rounds the pixels to 10 bits, within the tolerance below.
        var pixels = OpCheckPair.Random(batch * 3 * size * size, seed: 11, scale: 2f);
        var images = pair.Floats(pixels, cpuValues: precision == Precision.Float16 ? OpCheckPair.Rounded(pixels, precision) : pixels);
        var prefix = pair.Floats(OpCheckPair.Random(prefixTokens * channels, seed: 14));
        var pos = pair.Floats(OpCheckPair.Random(tokens * channels, seed: 15));
        var x = pair.FloatOutput(batch * tokens * channels);

        pair.Cpu.PatchEmbed(images.Cpu, prefix.Cpu, pos.Cpu, linear.Cpu, batch, size, patch, prefixTokens, x.Cpu);
        pair.Device.PatchEmbed(images.Device, prefix.Device, pos.Device, linear.Device, batch, size, patch, prefixTokens, x.Device);

        int n = batch * tokens * channels;
        bool tf32 = precision == Precision.TensorFloat32;
        pair.Close(pair.ReadCpu(x.Cpu, n), pair.ReadDevice(x.Device, n, "x"), tf32 ? 2e-2f : 1e-4f, tf32 ? 4e-3f : 1e-5f, "x");
    }

    /// <summary>
    /// The output rounded once to half after P was rounded to half for P·V: within 2u relative plus 4u·max|v|; the key mean
    /// is summed over heads in order in fp32 from the same half keys (bit-identical); the class row's softmax is fp32.
    /// </summary>
    private static void HalfAttention(OpCheckPair pair, Precision precision, int batch, int tokens, int heads, int headDim, SizeMode sizeMode, bool classAttention)
    {
        int c = heads * headDim, rows = batch * tokens;
        const float scale = 1.5f;
        var qkv = pair.Activations(OpCheckPair.Random(rows * 3 * c, seed: tokens + headDim, scale: scale), precision);
        var size = sizeMode == SizeMode.None ? default : pair.Floats(AttentionSizes(sizeMode, rows, tokens));
        var output = pair.ActivationOutput(rows * c, precision);
        var keyMean = pair.FloatOutput(rows * headDim);
        var cls = classAttention ? pair.FloatOutput(rows) : default;
        var score = classAttention ? pair.FloatOutput(rows) : default;

        pair.Cpu.Attention(qkv.Cpu, size.Cpu, batch, tokens, heads, headDim, output.Cpu, keyMean.Cpu, cls.Cpu);
        pair.Device.Attention(qkv.Device, size.Device, batch, tokens, heads, headDim, output.Device, keyMean.Device, cls.Device);
        if (classAttention)
        {
            // ToMeCIS's importance from the class row and the half values' norms.
            pair.Cpu.ClassImportance(qkv.Cpu, cls.Cpu, batch, tokens, heads, headDim, score.Cpu);
            pair.Device.ClassImportance(qkv.Device, cls.Device, batch, tokens, heads, headDim, score.Device);
        }

        double u = Unit(precision);
        pair.Close(pair.ReadCpu(output.Cpu, rows * c), pair.ReadDevice(output.Device, rows * c, "output"), (float)(4 * u * scale), (float)(2 * u), "output");
        pair.Identical(pair.ReadCpu(keyMean.Cpu, rows * headDim), pair.ReadDevice(keyMean.Device, rows * headDim, "key mean"), "key mean");
        if (classAttention)
        {
            pair.Close(pair.ReadCpu(cls.Cpu, rows), pair.ReadDevice(cls.Device, rows, "class attention"), 1e-6f, 1e-4f, "class attention");
            pair.Close(pair.ReadCpu(score.Cpu, rows), pair.ReadDevice(score.Device, rows, "class importance"), 1e-6f, 1e-4f, "class importance");
        }
    }
}
