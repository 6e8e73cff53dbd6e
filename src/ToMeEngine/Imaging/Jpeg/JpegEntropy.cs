using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ToMe.Imaging.Jpeg;

/// <summary>
/// The bit reader, Huffman decoding shared by both kinds of scan, restarts, and progressive scans (T.81 annex F
/// and G); the sequential hot path is in JpegBaseline.cs.
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
