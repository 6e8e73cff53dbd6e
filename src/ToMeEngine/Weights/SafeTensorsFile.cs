using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ToMe.Weights;

/// <summary>
/// A memory-mapped safetensors file. The header is validated completely before any tensor is handed out:
/// header length bound, JSON shape, dtype names, <c>shape × dtype size = byte count</c>, offsets inside the
/// file and no overlapping tensors. F32 tensors are read in place (zero-copy); other dtypes convert.
/// Spans returned by this object are valid until it is disposed. Reads are thread-safe.
/// </summary>
internal sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Headers larger than this are refused (the format's own readers use the same bound).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private readonly byte* basePointer;
    private readonly long fileLength;
    private readonly Dictionary<string, TensorInfo> tensors;
    private readonly string name;   // the path as the caller gave it, for messages
    private readonly void* owned;   // the file's bytes read from a stream (NativeMemory), freed on Dispose
    private bool disposed;

    public string FilePath { get; }

    /// <summary>The <c>__metadata__</c> entries (string to string), empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => tensors;

    private SafeTensorsFile(string path, string name, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePointer, long fileLength,
        Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata, void* owned = null)
    {
        this.owned = owned;
        FilePath = path;
        this.name = name;
        this.map = map;
        this.view = view;
        this.basePointer = basePointer;
        this.fileLength = fileLength;
        this.tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="InvalidModelException"/> naming the problem.</summary>
    public static SafeTensorsFile Open(string path, ModelLimits? limits = null) => Open(path, limits, null);

    /// <param name="path">the file</param>
    /// <param name="limits">bounds on the header</param>
    /// <param name="expected">what the caller takes instead, appended to the message when the file is some other kind</param>
    internal static SafeTensorsFile Open(string path, ModelLimits? limits, string? expected)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new FileNotFoundException($"{path}: no such safetensors file", full);
        // FileInfo.Length of a symlink is the link's own size; Hugging Face cache snapshots are links to blobs.
        long length = new FileInfo(File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full).Length;
        // Messages name the file as given: a folder's model.safetensors is told apart from any other one.
        var name = path;
        if (length < 8)
            throw new InvalidModelException($"{name}: truncated safetensors file ({length} bytes; the 8-byte header length alone needs 8)");

        var map = MemoryMappedFile.CreateFromFile(full, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            var (tensors, metadata) = ParseHeader(name, new ReadOnlySpan<byte>(p, checked((int)Math.Min(length, int.MaxValue))), length, limits, expected);
            return new SafeTensorsFile(full, name, map, view, p, length, tensors, metadata);
        }
        catch
        {
            if (acquired)
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads a safetensors file from <paramref name="stream"/> (from its position; it need not seek, and stays open) into
    /// native memory and validates it as <see cref="Open(string, ModelLimits?, string?)"/> does. The header comes first and
    /// says how long the file is, so the stream is read that far and no further, and memory grows as bytes arrive: a header
    /// that declares more data than the stream holds fails where the stream ends, without allocating what it declares.
    /// </summary>
    /// <param name="stream">the file's bytes</param>
    /// <param name="name">what messages call the file</param>
    /// <param name="limits">bounds on the header</param>
    /// <param name="expected">what the caller takes instead, appended to the message when the bytes are some other kind of file</param>
    internal static SafeTensorsFile Read(Stream stream, string name, ModelLimits? limits, string? expected)
    {
        limits ??= ModelLimits.Default;
        // Nine bytes: the length and the header's first byte, which tells a safetensors file from another kind of file.
        var start = new byte[9];
        int got = stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false);
        if (got < 8)
            throw new InvalidModelException($"{name}: truncated safetensors file ({got} bytes; the 8-byte header length alone needs 8)");
        ulong headerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(start);
        if (got < 9 || headerLength > (ulong)Math.Min(limits.MaxHeaderBytes, int.MaxValue - 8) || headerLength < 2)
        {
            ParseHeader(name, start.AsSpan(0, got), got < 9 ? got : long.MaxValue, limits, expected); // throws what Open would say
            throw new InvalidModelException($"{name} is not a safetensors file");
        }
        var header = new byte[8 + (int)headerLength];
        start.AsSpan(0, got).CopyTo(header);
        int headerGot = got + stream.ReadAtLeast(header.AsSpan(got), header.Length - got, throwOnEndOfStream: false);
        if (headerGot < header.Length)
            throw new InvalidModelException($"{name}: header length {headerLength} runs past the end of the stream ({headerGot} bytes)");
        var (declared, _) = ParseHeader(name, header, long.MaxValue, limits, expected);
        long length = declared.Values.Select(t => t.Offset + t.ByteLength).DefaultIfEmpty(0).Max();
        length = Math.Max(length, header.Length);

        nuint capacity = (nuint)Math.Min(length, header.Length + (64L << 20));
        byte* buffer = (byte*)NativeMemory.Alloc(capacity);
        try
        {
            header.CopyTo(new Span<byte>(buffer, header.Length));
            long filled = header.Length;
            while (filled < length)
            {
                if ((nuint)filled == capacity)
                {
                    capacity = (nuint)Math.Min(length, 2 * (long)capacity);
                    buffer = (byte*)NativeMemory.Realloc(buffer, capacity);
                }
                int read = stream.Read(new Span<byte>(buffer + filled, (int)Math.Min((long)capacity - filled, 1 << 30)));
                if (read == 0)
                    throw new InvalidModelException($"{name}: truncated: its header declares {length} bytes, the stream ended after {filled}");
                filled += read;
            }
            var (tensors, metadata) = ParseHeader(name, new ReadOnlySpan<byte>(buffer, (int)Math.Min(length, int.MaxValue)), length, limits, expected);
            return new SafeTensorsFile(name, name, null, null, buffer, length, tensors, metadata, owned: buffer);
        }
        catch
        {
            NativeMemory.Free(buffer);
            throw;
        }
    }

    /// <summary>Parses and validates a header; <paramref name="prefix"/> holds at least the first min(file, 2 GiB) bytes.</summary>
    internal static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string name, ReadOnlySpan<byte> prefix, long fileLength,
        ModelLimits? limits = null, string? expected = null)
    {
        limits ??= ModelLimits.Default;
        long maxHeader = Math.Min(limits.MaxHeaderBytes, int.MaxValue - 8);
        ulong headerLength = BitConverter.ToUInt64(prefix[..8]);
        if (BitConverter.IsLittleEndian is false)
            headerLength = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(headerLength);
        // A safetensors header is a JSON object right after its length; anything else with an impossible length is
        // another kind of file (a config.json or a photo passed as the model), said so rather than as a bad header.
        bool objectFollows = prefix.Length > 8 && prefix[8] == (byte)'{';
        if (!objectFollows && (headerLength > (ulong)maxHeader || headerLength > (ulong)(fileLength - 8) || headerLength < 2))
            throw new InvalidModelException($"{name} is not a safetensors file ({LooksLike(prefix, fileLength)}){(expected is null ? "" : "; " + expected)}");
        if (headerLength > (ulong)maxHeader)
            throw new InvalidModelException($"{name}: header length {headerLength} exceeds the {maxHeader}-byte limit (ModelLimits.MaxHeaderBytes)");
        if (headerLength > (ulong)(fileLength - 8))
            throw new InvalidModelException($"{name}: header length {headerLength} runs past the end of the file ({fileLength} bytes)");
        if (headerLength < 2)
            throw new InvalidModelException($"{name}: header length {headerLength} is too small to hold a JSON object");
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(prefix.Slice(8, (int)headerLength).ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new InvalidModelException($"{name}: header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        try
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidModelException($"{name}: header must be a JSON object, found {doc.RootElement.ValueKind}");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (sawMetadata)
                        throw new InvalidModelException($"{name}: __metadata__ appears twice");
                    sawMetadata = true;
                    ReadMetadata(name, property.Value, metadata);
                    continue;
                }
                // Counted before the entry is parsed: a 100 MiB header could otherwise list millions.
                if (tensors.Count >= limits.MaxTensors)
                    throw new InvalidModelException($"{name}: more than {limits.MaxTensors} tensors in the header (ModelLimits.MaxTensors)");
                if (tensors.ContainsKey(property.Name))
                    throw new InvalidModelException($"{name}: tensor '{property.Name}' appears twice in the header");
                tensors.Add(property.Name, ReadEntry(name, property.Name, property.Value, dataStart, dataLength));
            }
            CheckNoOverlap(name, tensors.Values);
            return (tensors, metadata);
        }
        catch (InvalidOperationException e)
        {
            // The checks above cover each value's kind; this net turns a missed one, or an escaped lone
            // surrogate ("\ud800") that JsonElement will not turn into a string, into the documented error.
            throw new InvalidModelException($"{name}: malformed header ({e.Message})", e);
        }
    }

    /// <summary>What a file that is not safetensors seems to be, from its first bytes.</summary>
    private static string LooksLike(ReadOnlySpan<byte> prefix, long fileLength)
    {
        var text = prefix[..Math.Min(prefix.Length, 64)];
        int first = text.IndexOfAnyExcept(" \t\r\n\uFEFF"u8);
        if (first >= 0 && text[first] is (byte)'{' or (byte)'[')
            return "it looks like JSON";
        var format = Imaging.ImageFormats.Sniff(prefix);
        if (format != Imaging.ImageFormat.Unknown)
            return $"it looks like a {Imaging.ImageFormats.DisplayName(format)} image";
        return $"its first 8 bytes give a header length of {BitConverter.ToUInt64(prefix[..8])} for a file of {fileLength} bytes";
    }

    private static void ReadMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidModelException($"{file}: __metadata__ must be an object of strings, found {value.ValueKind}");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidModelException($"{file}: __metadata__.{entry.Name} must be a string, found {entry.Value.ValueKind}");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ReadEntry(string file, string tensor, JsonElement value, long dataStart, long dataLength)
    {
        string where = $"{file}: tensor '{tensor}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidModelException($"{where}: entry must be an object with dtype, shape and data_offsets, found {value.ValueKind}");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new InvalidModelException($"{where}: missing or non-string 'dtype'");
        var dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
            throw new InvalidModelException($"{where}: unsupported dtype '{dtypeName}' (expected F32, F16, BF16, F64, I32, I64 or U8)");
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new InvalidModelException($"{where}: missing or non-array 'shape'");
        var shape = new List<int>();
        long elements = 1;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt32(out int d) || d < 0)
                throw new InvalidModelException($"{where}: shape entries must be non-negative integers, found {dim.GetRawText()}");
            shape.Add(d);
            elements = d == 0 ? 0 : (elements > long.MaxValue / d ? -1 : elements * d);
            if (elements < 0)
                throw new InvalidModelException($"{where}: shape {TensorInfo.FormatShape(shape)} is too large");
        }
        if (shape.Count > 8)
            throw new InvalidModelException($"{where}: {shape.Count} dimensions (at most 8 supported)");
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new InvalidModelException($"{where}: 'data_offsets' must be an array [begin, end]");
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new InvalidModelException($"{where}: data_offsets {offsets.GetRawText()} must be integers with 0 <= begin <= end");
        if (end > dataLength)
            throw new InvalidModelException($"{where}: data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes; file truncated?)");
        if (elements > long.MaxValue / dtype.Size() || elements * dtype.Size() != end - begin)
            throw new InvalidModelException(
                $"{where}: shape {TensorInfo.FormatShape(shape)} × {dtypeName} needs {(elements > long.MaxValue / dtype.Size() ? "more than 2^63" : (elements * dtype.Size()).ToString())} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        // Tensors are handed out as spans and float arrays, both indexed by int.
        if (end - begin > int.MaxValue)
            throw new InvalidModelException($"{where}: {end - begin} bytes; tensors over 2 GiB are not supported");
        return new TensorInfo(tensor, dtype, shape.ToArray(), dataStart + begin, end - begin);
    }

    private static void CheckNoOverlap(string file, IEnumerable<TensorInfo> entries)
    {
        TensorInfo? previous = null;
        foreach (var t in entries.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset))
        {
            if (previous is not null && t.Offset < previous.Offset + previous.ByteLength)
                throw new InvalidModelException($"{file}: tensors '{previous.Name}' and '{t.Name}' overlap in the data section");
            previous = t;
        }
    }

    public bool Contains(string tensorName) => tensors.ContainsKey(tensorName);

    /// <summary>The entry for <paramref name="tensorName"/>, or an error naming the file and tensor.</summary>
    public TensorInfo Get(string tensorName)
    {
        if (!tensors.TryGetValue(tensorName, out var info))
            throw new InvalidModelException($"{name}: missing tensor '{tensorName}'");
        return info;
    }

    /// <summary>The raw little-endian bytes of a tensor, in place.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo info)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (info.Offset + info.ByteLength > fileLength)
            throw new ArgumentException($"tensor '{info.Name}' is not from this file", nameof(info));
        return new ReadOnlySpan<byte>(basePointer + info.Offset, checked((int)info.ByteLength));
    }

    /// <summary>An F32 tensor in place (zero-copy when 4-byte aligned, otherwise copied).</summary>
    public ReadOnlySpan<float> GetFloat32Span(string tensorName)
    {
        var info = Get(tensorName);
        if (info.DType != DType.F32)
            return ReadFloat32(tensorName);
        if ((((nint)(basePointer + info.Offset)) & 3) == 0)
            return MemoryMarshal.Cast<byte, float>(GetBytes(info));
        return MemoryMarshal.Cast<byte, float>(GetBytes(info)).ToArray();
    }

    /// <summary>A floating-point tensor (F32, F16, BF16 or F64) as float32.</summary>
    public float[] ReadFloat32(string tensorName)
    {
        var info = Get(tensorName);
        var bytes = GetBytes(info);
        var result = new float[info.ElementCount];
        switch (info.DType)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result);
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result);
                break;
            case DType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < raw.Length; i++)
                    result[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                break;
            case DType.F64:
                var d = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < d.Length; i++)
                    result[i] = (float)d[i];
                break;
            default:
                throw new InvalidModelException($"{name}: tensor '{tensorName}' is {info.DType}, expected a floating-point dtype");
        }
        return result;
    }

    /// <summary>A floating-point tensor as float64 (exact for F64; widened otherwise).</summary>
    public double[] ReadFloat64(string tensorName)
    {
        var info = Get(tensorName);
        if (info.DType == DType.F64)
            return MemoryMarshal.Cast<byte, double>(GetBytes(info)).ToArray();
        return Array.ConvertAll(ReadFloat32(tensorName), x => (double)x);
    }

    /// <summary>An integer tensor (I32, I64 within int range, or U8) as int32.</summary>
    public int[] ReadInt32(string tensorName)
    {
        var info = Get(tensorName);
        var bytes = GetBytes(info);
        switch (info.DType)
        {
            case DType.I32:
                return MemoryMarshal.Cast<byte, int>(bytes).ToArray();
            case DType.I64:
                var longs = MemoryMarshal.Cast<byte, long>(bytes);
                var result = new int[longs.Length];
                for (int i = 0; i < longs.Length; i++)
                    result[i] = checked((int)longs[i]);
                return result;
            case DType.U8:
                return Array.ConvertAll(bytes.ToArray(), b => (int)b);
            default:
                throw new InvalidModelException($"{name}: tensor '{tensorName}' is {info.DType}, expected an integer dtype");
        }
    }

    /// <summary>A U8 tensor's bytes (copied).</summary>
    public byte[] ReadUInt8(string tensorName)
    {
        var info = Get(tensorName);
        if (info.DType != DType.U8)
            throw new InvalidModelException($"{name}: tensor '{tensorName}' is {info.DType}, expected U8");
        return GetBytes(info).ToArray();
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        view?.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
        NativeMemory.Free(owned);
    }
}
