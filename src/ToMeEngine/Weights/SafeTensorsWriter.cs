using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ToMe.Weights;

/// <summary>Builds a safetensors file: tensors sorted by name, contiguous, header padded to 8 bytes.</summary>
internal sealed class SafeTensorsWriter
{
    private readonly SortedDictionary<string, (DType DType, int[] Shape, byte[] Data)> tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> metadata = new(StringComparer.Ordinal);

    public SafeTensorsWriter AddMetadata(string key, string value)
    {
        metadata[key] = value;
        return this;
    }

    public SafeTensorsWriter Add(string name, DType dtype, int[] shape, ReadOnlySpan<byte> data)
    {
        long elements = 1;
        foreach (var d in shape)
            elements *= d;
        if (elements * dtype.Size() != data.Length)
            throw new ArgumentException($"tensor '{name}': shape {TensorInfo.FormatShape(shape)} × {dtype} needs {elements * dtype.Size()} bytes, got {data.Length}");
        tensors[name] = (dtype, (int[])shape.Clone(), data.ToArray());
        return this;
    }

    public SafeTensorsWriter Add(string name, int[] shape, ReadOnlySpan<float> data) =>
        Add(name, DType.F32, shape, MemoryMarshal.AsBytes(data));

    public SafeTensorsWriter Add(string name, int[] shape, ReadOnlySpan<int> data) =>
        Add(name, DType.I32, shape, MemoryMarshal.AsBytes(data));

    public byte[] ToArray()
    {
        using var stream = new MemoryStream();
        WriteTo(stream);
        return stream.ToArray();
    }

    public void WriteTo(Stream stream)
    {
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                    json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", t.DType.Name());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.Length;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < padding; i++)
            header.WriteByte((byte)' ');
        Span<byte> length = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var t in tensors.Values)
            stream.Write(t.Data);
    }

    /// <summary>
    /// Writes to <paramref name="path"/> through a temporary file beside it, so readers never see half a file. On failure
    /// the temporary file is removed and the error names <paramref name="path"/>: the temporary name is no business of the caller's.
    /// </summary>
    public void Save(string path)
    {
        var temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            using (var file = File.Create(temp))
                WriteTo(file);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e)
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // The write's error is the one to report.
            }
            if (e is not (IOException or UnauthorizedAccessException) || !e.Message.Contains(temp, StringComparison.Ordinal))
                throw;
            var message = e.Message.Replace(temp, path, StringComparison.Ordinal);
            throw e switch
            {
                UnauthorizedAccessException => new UnauthorizedAccessException(message, e),
                DirectoryNotFoundException => new DirectoryNotFoundException(message, e),
                _ => new IOException(message, e),
            };
        }
    }
}
