namespace ToMe.Imaging;

/// <summary>
/// timm's eval transform parameters (crop_mode "center"): resize the shorter side to
/// <c>floor(ImgSize / CropPct)</c>, center-crop <c>ImgSize</c>, scale to [0,1], normalize.
/// </summary>
public sealed record PreprocessConfig
{
    public int ImgSize { get; init; } = 224;
    public double CropPct { get; init; } = 0.875;
    public ResampleFilter Interpolation { get; init; } = ResampleFilter.Bicubic;
    public float[] Mean { get; init; } = [0.485f, 0.456f, 0.406f];
    public float[] Std { get; init; } = [0.229f, 0.224f, 0.225f];

    /// <summary>DeiT: ImageNet mean/std, crop_pct 0.875, bicubic.</summary>
    public static PreprocessConfig ImageNet(int imgSize = 224) => new() { ImgSize = imgSize };

    /// <summary>AugReg ViT: mean = std = 0.5, crop_pct 0.9, bicubic.</summary>
    public static PreprocessConfig Inception(int imgSize = 224, double cropPct = 0.9) =>
        new() { ImgSize = imgSize, CropPct = cropPct, Mean = [0.5f, 0.5f, 0.5f], Std = [0.5f, 0.5f, 0.5f] };

    /// <summary>timm: <c>scale_size = math.floor(img_size / crop_pct)</c>.</summary>
    public int ScaleSize => (int)Math.Floor(ImgSize / CropPct);

    internal void Validate()
    {
        if (ImgSize <= 0) throw new ArgumentOutOfRangeException(nameof(ImgSize), ImgSize, "must be positive");
        if (!(CropPct > 0) || double.IsInfinity(CropPct)) throw new ArgumentOutOfRangeException(nameof(CropPct), CropPct, "must be positive");
        if (ScaleSize <= 0) throw new ArgumentOutOfRangeException(nameof(CropPct), CropPct, "resize target would be empty");
        if (Mean is not { Length: 3 } || Std is not { Length: 3 })
            throw new ArgumentException("Mean and Std need 3 entries (R, G, B)");
        if (Std.Any(s => s == 0 || !float.IsFinite(s))) throw new ArgumentException("Std entries must be finite and non-zero");
    }
}
