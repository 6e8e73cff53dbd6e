namespace ToMe.Weights;

/// <summary>One tensor's entry in a safetensors header; <see cref="Offset"/> is absolute in the file.</summary>
internal sealed record TensorInfo(string Name, DType DType, IReadOnlyList<int> Shape, long Offset, long ByteLength)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
                n *= d;
            return n;
        }
    }

    public string ShapeText => FormatShape(Shape);

    public static string FormatShape(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";
}
