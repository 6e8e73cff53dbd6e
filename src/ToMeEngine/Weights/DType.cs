namespace ToMe.Weights;

/// <summary>Element types a safetensors file may hold that the engine reads.</summary>
internal enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I32,
    I64,
    U8,
}

internal static class DTypes
{
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>The safetensors spelling ("F32", "BF16", ...).</summary>
    public static string Name(this DType dtype) => dtype.ToString();

    public static bool TryParse(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "F64": dtype = DType.F64; return true;
            case "I32": dtype = DType.I32; return true;
            case "I64": dtype = DType.I64; return true;
            case "U8": dtype = DType.U8; return true;
            default: dtype = default; return false;
        }
    }
}
