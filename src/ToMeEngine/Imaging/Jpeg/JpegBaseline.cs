using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// Sequential (baseline) scans, the hot path: a row of MCUs at a time, its blocks entropy-decoded into a small
/// coefficient buffer, then the blocks the requested region needs through the inverse DCT into the component planes.
/// </summary>
internal sealed partial class JpegDecoder
{
    private short[]? rowCoefs;
    private byte[]? rowFlags;

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

}
