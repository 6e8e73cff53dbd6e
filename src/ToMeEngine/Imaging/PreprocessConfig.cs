namespace ToMe.Imaging;

/// <summary>
/// timm's eval transform (<c>transforms_factory.transforms_imagenet_eval</c>): how the picture is resized to
/// <see cref="PreprocessConfig.ScaleSize"/> = <c>floor(ImgSize / CropPct)</c>, then the <c>ImgSize</c> crop, scale to [0,1], normalize.
/// </summary>
public enum CropMode
{
    /// <summary>The shorter side resized to ScaleSize (aspect kept), then a center crop: what is outside the crop is lost.</summary>
    Center,

    /// <summary>Both sides resized to ScaleSize (aspect not kept), then a center crop.</summary>
    Squash,

    /// <summary>The longer side resized to ScaleSize (aspect kept), then a center crop padded with the mean colour.</summary>
    Border,
}

/// <summary>timm's eval transform parameters; see <see cref="CropMode"/>.</summary>
public sealed record PreprocessConfig
{
    /// <summary>Side of the square crop the model takes, in pixels (timm's <c>input_size[1:]</c>); 224 by default.</summary>
    public int ImgSize { get; init; } = 224;

    /// <summary>
    /// The crop's share of the resized picture, in (0, 1]: the picture is resized to <see cref="ScaleSize"/> =
    /// <c>floor(ImgSize / CropPct)</c> before the crop (timm's <c>crop_pct</c>); 0.875 by default.
    /// </summary>
    public double CropPct { get; init; } = 0.875;

    /// <summary>The resize filter (timm's <c>interpolation</c>); bicubic by default.</summary>
    public ResampleFilter Interpolation { get; init; } = ResampleFilter.Bicubic;

    /// <summary>How the picture is fitted to the crop (timm's <c>crop_mode</c>); center by default.</summary>
    public CropMode CropMode { get; init; } = CropMode.Center;

    /// <summary>Per-channel mean (R, G, B) subtracted after scaling to [0, 1]; ImageNet's by default.</summary>
    public float[] Mean { get; init; } = [0.485f, 0.456f, 0.406f];

    /// <summary>Per-channel standard deviation (R, G, B) the result is divided by; ImageNet's by default. Entries must be finite and non-zero.</summary>
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
        if (!Enum.IsDefined(CropMode)) throw new ArgumentOutOfRangeException(nameof(CropMode), CropMode, "unknown crop mode");
        if (ScaleSize <= 0) throw new ArgumentOutOfRangeException(nameof(CropPct), CropPct, "resize target would be empty");
        if (Mean is not { Length: 3 } || Std is not { Length: 3 })
            throw new ArgumentException("Mean and Std need 3 entries (R, G, B)");
        if (Std.Any(s => s == 0 || !float.IsFinite(s))) throw new ArgumentException("Std entries must be finite and non-zero");
    }
}
