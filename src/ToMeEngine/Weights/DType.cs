namespace ToMe.Weights;

/// <summary>Element types a safetensors file may hold that the engine reads.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I32,
    I64,
    U8,
}
