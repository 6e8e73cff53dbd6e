using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// Bit reader and Huffman decoding of baseline and progressive scans (T.81 annex F and G). Baseline scans
/// go a row of MCUs at a time: the row's blocks are entropy-decoded into a small coefficient buffer, then
/// the blocks the requested region needs go through the inverse DCT into the component planes.
/// </summary>
internal sealed partial class JpegDecoder
{
    // Zig-zag position -> natural position, padded with 63 so that a corrupt run past the end of the
    // block lands harmlessly on the last coefficient, as libjpeg's jpeg_natural_order does, and so does
    // the zero that the fast path writes for an end of block (k + 64 < 128).
    internal static readonly byte[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];

    private ulong bitBuf;     // next bits, MSB first
    private int bitCount;
    private int padBits;      // zero bits appended after a marker or the end of data
    private bool hitMarker, hitEnd;
    private int eobRun;

    private void ResetBits()
    {
        bitBuf = 0;
        bitCount = 0;
        padBits = 0;
        hitMarker = false;
        hitEnd = false;
    }

    private void Fill()
    {
        var (bits, count, p) = (bitBuf, bitCount, pos);
        FillBytes(ref bits, ref count, ref p);
        (bitBuf, bitCount, pos) = (bits, count, p);
    }

    /// <summary>
    /// Tops the buffer up to at least 57 bits, byte by byte. At a marker, libjpeg supplies zero bits
    /// (corrupt data decodes as flat blocks); at the end of the input the zeros are counted so that
    /// consuming them is reported as truncation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FillBytes(ref ulong bits, ref int count, ref int p)
    {
        var d = data;
        while (count <= 56)
        {
            ulong b = 0;
            if (hitMarker || hitEnd)
            {
                padBits += 8;
            }
            else if ((uint)p >= (uint)d.Length)
            {
                hitEnd = true;
                padBits += 8;
            }
            else
            {
                b = d[p];
                if (b == 0xFF)
                {
                    if (p + 1 >= d.Length)
                    {
                        hitEnd = true;
                        padBits += 8;
                        b = 0;
                    }
                    else if (d[p + 1] == 0)
                    {
                        p += 2;
                    }
                    else
                    {
                        hitMarker = true;
                        padBits += 8;
                        b = 0;
                    }
                }
                else
                {
                    p++;
                }
            }
            bits |= b << (56 - count);
            count += 8;
        }
    }

    private int GetBits(int n)
    {
        if (n == 0) return 0;
        if (bitCount < n) Fill();
        var v = (int)(bitBuf >> (64 - n));
        bitBuf <<= n;
        bitCount -= n;
        return v;
    }

    private int GetBit()
    {
        if (bitCount < 1) Fill();
        var v = (int)(bitBuf >> 63);
        bitBuf <<= 1;
        bitCount--;
        return v;
    }

    private int DecodeSymbol(HuffmanTable t)
    {
        if (bitCount < 16) Fill();
        int e = t.Lookup[(int)(bitBuf >> (64 - HuffmanTable.LookBits))];
        if (e != 0)
        {
            var len = e >> 8;
            bitBuf <<= len;
            bitCount -= len;
            return e & 0xFF;
        }
        e = LongCode(t, bitBuf);
        var n = e >> 8;
        bitBuf <<= n;
        bitCount -= n;
        return e & 0xFF;
    }

    /// <summary>
    /// A code longer than the look-up table's: (length &lt;&lt; 8) | symbol by the canonical limits
    /// (at least 16 bits buffered, MSB first).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int LongCode(HuffmanTable t, ulong bits)
    {
        var code16 = (int)(bits >> 48);
        for (var len = HuffmanTable.LookBits + 1; len <= 16; len++)
        {
            var code = code16 >> (16 - len);
            if (code <= t.MaxCode[len])
            {
                var idx = code + t.ValOffset[len];
                if ((uint)idx >= (uint)t.Values.Length) ThrowCorrupt("corrupt Huffman data");
                return (len << 8) | t.Values[idx];
            }
        }
        ThrowCorrupt("corrupt entropy-coded data (invalid Huffman code)");
        return 0;
    }

    [DoesNotReturn]
    private static void ThrowCorrupt(string message) => throw Error(message);

    private static int Extend(int v, int s) => v < 1 << (s - 1) ? v - (1 << s) + 1 : v;

    private int ReceiveExtend(int s)
    {
        if (s == 0) return 0;
        if (s > 16) throw Error("corrupt entropy-coded data (coefficient size > 16 bits)");
        return Extend(GetBits(s), s);
    }

    // libjpeg's insufficient_data: once a scan has read past a marker, its remaining MCUs (up to the
    // next restart) are left empty instead of being decoded from zero bits. Also bounds the work a
    // corrupt file can cause.
    private bool insufficientData;

    private void CheckOverrun()
    {
        if (bitCount >= padBits) return;
        if (hitEnd)
            throw Error("truncated file (entropy-coded data ends early)");
        insufficientData = true;
    }

    /// <summary>
    /// At a restart boundary: drop the remaining bits, consume the RSTn marker, reset predictions. A
    /// missing RSTn leaves the reader on the marker found (zeros follow), like libjpeg's resync.
    /// </summary>
    private void Restart(JpegComponent[] scanComps)
    {
        var stopped = hitMarker;
        ResetBits();
        if (!stopped)
        {
            while (true)
            {
                while (pos < data.Length && data[pos] != 0xFF) pos++;
                while (pos + 1 < data.Length && data[pos + 1] == 0xFF) pos++;
                if (pos + 1 >= data.Length) throw Error("truncated file (missing restart marker)");
                if (data[pos + 1] != 0) break;
                pos += 2;
            }
        }
        if (pos + 1 < data.Length && data[pos] == 0xFF && data[pos + 1] is >= 0xD0 and <= 0xD7)
            pos += 2;
        else
            hitMarker = true;
        foreach (var c in scanComps) c.DcPred = 0;
        eobRun = 0;
        insufficientData = false;
    }

    /// <summary>Before each MCU: after every restartInterval of them, the restart marker.</summary>
    private void NextUnit(JpegComponent[] scanComps, ref int todo)
    {
        if (restartInterval == 0) return;
        if (todo == 0)
        {
            Restart(scanComps);
            todo = restartInterval;
        }
        todo--;
    }

    private short[]? rowCoefs;
    private byte[]? rowFlags;

    private void DecodeScan(JpegComponent[] scanComps, int ss, int se, int ah, int al)
    {
        ResetBits();
        eobRun = 0;
        insufficientData = false;
        if (!progressive)
        {
            DecodeBaselineScan(scanComps);
            return;
        }
        var single = scanComps.Length == 1;
        var c0 = scanComps[0];
        int unitsX = single ? c0.CompBlocksW : mcusX, unitsY = single ? c0.CompBlocksH : mcusY;
        long total = (long)unitsX * unitsY;
        var todo = restartInterval;
        for (long m = 0; m < total; m++)
        {
            NextUnit(scanComps, ref todo);
            int ux = (int)(m % unitsX), uy = (int)(m / unitsX);
            if (single)
            {
                DecodeProgressiveUnit(c0, ux, uy, ss, se, ah, al);
            }
            else
            {
                foreach (var c in scanComps)
                    for (var v = 0; v < c.V; v++)
                        for (var h = 0; h < c.H; h++)
                            DecodeProgressiveUnit(c, ux * c.H + h, uy * c.V + v, ss, se, ah, al);
            }
            CheckOverrun();
            // Nothing left to read before the next restart: progressive blocks would stay as they are.
            if (insufficientData && restartInterval == 0)
                break;
        }
    }

    /// <summary>
    /// A sequential scan, one row of MCUs (or of blocks, for a single-component scan) at a time. The row
    /// buffer holds the MCUs in order, each MCU's blocks component by component, row by row.
    /// </summary>
    private unsafe void DecodeBaselineScan(JpegComponent[] scanComps)
    {
        var single = scanComps.Length == 1;
        var c0 = scanComps[0];
        int unitsX = single ? c0.CompBlocksW : mcusX, unitsY = single ? c0.CompBlocksH : mcusY;
        var perUnit = single ? 1 : scanComps.Sum(c => c.H * c.V);
        var rowBlocks = checked(unitsX * perUnit);
        if (rowCoefs is null || rowCoefs.Length < rowBlocks * 64)
        {
            if (rowCoefs is not null) ArrayPool<short>.Shared.Return(rowCoefs);
            if (rowFlags is not null) ArrayPool<byte>.Shared.Return(rowFlags);
            rowCoefs = ArrayPool<short>.Shared.Rent(rowBlocks * 64);
            rowFlags = ArrayPool<byte>.Shared.Rent(rowBlocks);
        }
        var dc = new HuffmanTable[perUnit];
        var ac = new HuffmanTable[perUnit];
        var owner = new JpegComponent[perUnit];
        for (int i = 0, b = 0; i < scanComps.Length; i++)
            for (var j = 0; j < (single ? 1 : scanComps[i].H * scanComps[i].V); j++, b++)
                (dc[b], ac[b], owner[b]) = (dcTables[scanComps[i].DcTable]!, acTables[scanComps[i].AcTable]!, scanComps[i]);

        var todo = restartInterval;
        fixed (byte* d = data, zz = ZigZag, flags = rowFlags)
        fixed (short* coefs = rowCoefs)
        {
            for (var uy = 0; uy < unitsY; uy++)
            {
                var clock = ImagingProfile.Now();
                for (var ux = 0; ux < unitsX; ux++)
                {
                    NextUnit(scanComps, ref todo);
                    var first = ux * perUnit;
                    if (insufficientData)
                    {
                        // Past a marker: empty blocks, as libjpeg leaves them (mid-grey after the IDCT).
                        new Span<short>(coefs + first * 64, perUnit * 64).Clear();
                        new Span<byte>(flags + first, perUnit).Clear();
                        continue;
                    }
                    for (var b = 0; b < perUnit; b++)
                        flags[first + b] = DecodeBlock(dc[b], ac[b], ref owner[b].DcPred, coefs + (first + b) * 64, d, zz) ? (byte)1 : (byte)0;
                    CheckOverrun();
                }
                clock = ImagingProfile.Lap(ImagingStage.EntropyDecode, clock);
                var offset = 0;
                foreach (var c in scanComps)
                {
                    for (var v = 0; v < (single ? 1 : c.V); v++)
                    {
                        var by = single ? uy : uy * c.V + v;
                        if (by < c.By0 || by >= c.By1) continue;
                        for (var bx = c.Bx0; bx < c.Bx1; bx++)
                        {
                            var index = single ? bx : bx / c.H * perUnit + offset + v * c.H + bx % c.H;
                            InverseDct(c, bx, by, coefs + index * 64, flags[index] != 0);
                        }
                    }
                    offset += c.H * c.V;
                }
                ImagingProfile.Lap(ImagingStage.Idct, clock);
            }
        }
    }

    /// <summary>The block's samples into the component plane (column-major, as the planes are stored).</summary>
    private static unsafe void InverseDct(JpegComponent c, int bx, int by, short* block, bool hasAc)
    {
        fixed (byte* plane = c.Plane)
        fixed (int* q = c.Quant)
        {
            var o = plane + (long)bx * 8 * c.ColumnStride + by * 8;
            if (hasAc)
                Idct.Islow(block, q, o, c.ColumnStride);
            else
                Idct.DcOnly(block[0], q[0], o, c.ColumnStride);
        }
    }

    /// <summary>
    /// Decodes one sequential block into <paramref name="block"/> (cleared first, natural order); false when
    /// it has no AC coefficients (the IDCT reduces to a fill).
    /// </summary>
    /// <remarks>
    /// Hot path, free of calls so that its state stays in registers. The bit buffer lives in locals; a
    /// refill whenever fewer than 32 bits remain guarantees a code (at most 16 bits) and its value (at most
    /// 16 bits), so reads need no further checks. Most coefficients take one look-up in the 10-bit table
    /// that holds code, run and value together.
    /// </remarks>
    private unsafe bool DecodeBlock(HuffmanTable dcTable, HuffmanTable acTable, ref int dcPred, short* block, byte* d, byte* zz)
    {
        var zero = Vector256<short>.Zero;
        for (var i = 0; i < 64; i += 16)
            Vector256.Store(zero, block + i);
        ulong bits = bitBuf;
        int count = bitCount, p = pos;

        if (count < 32) Refill(ref bits, ref count, ref p, d);
        var e = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dcTable.Fast), (int)(bits >> (64 - HuffmanTable.FastBits)));
        int diff;
        if (e != 0)
        {
            var n = e & 0xFF;
            bits <<= n;
            count -= n;
            diff = e >> 16;
        }
        else
        {
            var rs = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dcTable.Lookup), (int)(bits >> (64 - HuffmanTable.LookBits)));
            int code = rs != 0 ? rs : LongCode(dcTable, bits), n = code >> 8, size = code & 0xFF;
            bits <<= n;
            count -= n;
            if (size > 16) ThrowCorrupt("corrupt entropy-coded data (coefficient size > 16 bits)");
            diff = 0;
            if (size != 0)
            {
                diff = Extend((int)(bits >> (64 - size)), size);
                bits <<= size;
                count -= size;
            }
        }
        dcPred += diff;
        block[0] = (short)dcPred;

        ref var fast = ref MemoryMarshal.GetArrayDataReference(acTable.Fast);
        ref var look = ref MemoryMarshal.GetArrayDataReference(acTable.Lookup);
        var nonzero = 0;
        for (var k = 1; k < 64; k++)
        {
            if (count < 32) Refill(ref bits, ref count, ref p, d);
            var f = Unsafe.Add(ref fast, (nint)(bits >> (64 - HuffmanTable.FastBits)));
            if (f != 0)
            {
                // The shift uses the low 6 bits of the entry, the length: one step less on the critical path.
                // End of block moves k past 63 (the zero lands on a padding entry of ZigZag).
                bits <<= f;
                count -= f & 0xFF;
                k += (f >> 8) & 0xFF;
                var value = f >> 16;
                block[zz[k]] = (short)value;
                nonzero |= value;
                continue;
            }
            int rs = Unsafe.Add(ref look, (nint)(bits >> (64 - HuffmanTable.LookBits)));
            if (rs == 0) rs = LongCode(acTable, bits);
            bits <<= rs >> 8;
            count -= rs >> 8;
            int r = (rs >> 4) & 15, size = rs & 15;
            if (size != 0)
            {
                k += r;
                var v = Extend((int)(bits >> (64 - size)), size);
                bits <<= size;
                count -= size;
                block[zz[k]] = (short)v;
                nonzero |= v;
            }
            else if (r == 15)
            {
                k += 15;
            }
            else
            {
                break;
            }
        }
        (bitBuf, bitCount, pos) = (bits, count, p);
        return nonzero != 0;
    }

    /// <summary>
    /// Tops the bit buffer up with as many whole bytes as fit, eight bytes read at once, when none of them
    /// is 0xFF (stuffing or a marker); otherwise, and near the end of the data, byte by byte.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void Refill(ref ulong bits, ref int count, ref int p, byte* d)
    {
        if (p <= data.Length - 8)
        {
            var w = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ulong>(d + p));
            // A byte of w is 0xFF exactly where ~w has a zero byte.
            if (((~w - 0x0101010101010101UL) & w & 0x8080808080808080UL) == 0)
            {
                var take = (63 - count) >> 3;
                bits |= (w & (ulong.MaxValue << (64 - 8 * take))) >> count;
                count += 8 * take;
                p += take;
                return;
            }
        }
        FillBytes(ref bits, ref count, ref p);
    }

    private void DecodeProgressiveUnit(JpegComponent c, int bx, int by, int ss, int se, int ah, int al)
    {
        // Past a marker: progressive coefficients keep what earlier scans gave them.
        if (insufficientData) return;
        var coefs = c.Coefs.AsSpan((by * c.BlocksW + bx) * 64, 64);
        if (ss == 0)
        {
            if (ah == 0)
            {
                c.DcPred += ReceiveExtend(DecodeSymbol(dcTables[c.DcTable]!));
                coefs[0] = (short)(c.DcPred << al);
            }
            else if (GetBit() != 0)
            {
                coefs[0] |= (short)(1 << al);
            }
        }
        else if (ah == 0)
        {
            DecodeAcFirst(acTables[c.AcTable]!, coefs, ss, se, al);
        }
        else
        {
            DecodeAcRefine(acTables[c.AcTable]!, coefs, ss, se, al);
        }
    }

    private void DecodeAcFirst(HuffmanTable ac, Span<short> coefs, int ss, int se, int al)
    {
        if (eobRun > 0)
        {
            eobRun--;
            return;
        }
        for (var k = ss; k <= se; k++)
        {
            var rs = DecodeSymbol(ac);
            int r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                coefs[ZigZag[k]] = (short)(ReceiveExtend(s) * (1 << al));
            }
            else if (r == 15)
            {
                k += 15;
            }
            else
            {
                eobRun = (1 << r) - 1;
                if (r != 0) eobRun += GetBits(r);
                break;
            }
        }
    }

    private void DecodeAcRefine(HuffmanTable ac, Span<short> coefs, int ss, int se, int al)
    {
        int p1 = 1 << al, m1 = -1 << al;
        var k = ss;
        if (eobRun == 0)
        {
            for (; k <= se; k++)
            {
                var rs = DecodeSymbol(ac);
                int r = rs >> 4, s = rs & 15;
                if (s != 0)
                {
                    s = GetBit() != 0 ? p1 : m1;
                }
                else if (r != 15)
                {
                    eobRun = 1 << r;
                    if (r != 0) eobRun += GetBits(r);
                    break;
                }
                do
                {
                    var z = ZigZag[k];
                    if (coefs[z] != 0)
                    {
                        if (GetBit() != 0 && (coefs[z] & p1) == 0)
                            coefs[z] = (short)(coefs[z] >= 0 ? coefs[z] + p1 : coefs[z] + m1);
                    }
                    else
                    {
                        if (--r < 0) break;
                    }
                    k++;
                } while (k <= se);
                if (s != 0 && k <= 63)
                    coefs[ZigZag[k]] = (short)s;
            }
        }
        if (eobRun > 0)
        {
            for (; k <= se; k++)
            {
                var z = ZigZag[k];
                if (coefs[z] != 0 && GetBit() != 0 && (coefs[z] & p1) == 0)
                    coefs[z] = (short)(coefs[z] >= 0 ? coefs[z] + p1 : coefs[z] + m1);
            }
            eobRun--;
        }
    }
}
