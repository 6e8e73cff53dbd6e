namespace ToMe.Imaging.Jpeg;

/// <summary>Bit reader and Huffman decoding of baseline and progressive scans (T.81 annex F and G).</summary>
internal sealed partial class JpegDecoder
{
    // Zig-zag position -> natural position, padded with 63 so that a corrupt run past the end of the
    // block lands harmlessly on the last coefficient, as libjpeg's jpeg_natural_order does.
    internal static readonly byte[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
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

    /// <summary>
    /// Tops the buffer up to at least 57 bits. At a marker, libjpeg supplies zero bits (corrupt data
    /// decodes as flat blocks); at the end of the input the zeros are counted so that consuming them is
    /// reported as truncation.
    /// </summary>
    private void Fill()
    {
        while (bitCount <= 56)
        {
            ulong b = 0;
            if (hitMarker || hitEnd)
            {
                padBits += 8;
            }
            else if (pos >= data.Length)
            {
                hitEnd = true;
                padBits += 8;
            }
            else
            {
                b = data[pos];
                if (b == 0xFF)
                {
                    if (pos + 1 >= data.Length)
                    {
                        hitEnd = true;
                        padBits += 8;
                        b = 0;
                    }
                    else if (data[pos + 1] == 0)
                    {
                        pos += 2;
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
                    pos++;
                }
            }
            bitBuf |= b << (56 - bitCount);
            bitCount += 8;
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
        var code16 = (int)(bitBuf >> 48);
        for (var len = HuffmanTable.LookBits + 1; len <= 16; len++)
        {
            var code = code16 >> (16 - len);
            if (code <= t.MaxCode[len])
            {
                bitBuf <<= len;
                bitCount -= len;
                var idx = code + t.ValOffset[len];
                if ((uint)idx >= (uint)t.Values.Length) throw Error("corrupt Huffman data");
                return t.Values[idx];
            }
        }
        throw Error("corrupt entropy-coded data (invalid Huffman code)");
    }

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

    private void DecodeScan(JpegComponent[] scanComps, int ss, int se, int ah, int al)
    {
        ResetBits();
        eobRun = 0;
        insufficientData = false;
        var single = scanComps.Length == 1;
        var c0 = scanComps[0];
        int unitsX = single ? c0.CompBlocksW : mcusX, unitsY = single ? c0.CompBlocksH : mcusY;
        long total = (long)unitsX * unitsY;
        var block = new short[64];
        var todo = restartInterval;
        for (long m = 0; m < total; m++)
        {
            if (restartInterval > 0)
            {
                if (todo == 0)
                {
                    Restart(scanComps);
                    todo = restartInterval;
                }
                todo--;
            }
            int ux = (int)(m % unitsX), uy = (int)(m / unitsX);
            if (single)
            {
                DecodeUnit(c0, ux, uy, block, ss, se, ah, al);
            }
            else
            {
                foreach (var c in scanComps)
                    for (var v = 0; v < c.V; v++)
                        for (var h = 0; h < c.H; h++)
                            DecodeUnit(c, ux * c.H + h, uy * c.V + v, block, ss, se, ah, al);
            }
            CheckOverrun();
            // Nothing left to read before the next restart: progressive blocks would stay as they are.
            if (insufficientData && progressive && restartInterval == 0)
                break;
        }
    }

    private void DecodeUnit(JpegComponent c, int bx, int by, short[] block, int ss, int se, int ah, int al)
    {
        if (insufficientData)
        {
            // An all-zero block; progressive coefficients keep what earlier scans gave them.
            if (!progressive)
                Idct.DcOnly(0, 0, c.Plane, by * 8 * c.PlaneStride + bx * 8, c.PlaneStride);
            return;
        }
        if (!progressive)
        {
            Array.Clear(block);
            if (DecodeBaselineBlock(c, block))
                Idct.Islow(block, c.Quant!, c.Plane, by * 8 * c.PlaneStride + bx * 8, c.PlaneStride);
            else
                Idct.DcOnly(block[0], c.Quant![0], c.Plane, by * 8 * c.PlaneStride + bx * 8, c.PlaneStride);
            return;
        }
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

    /// <summary>Decodes one block; false when it has no AC coefficients (the IDCT reduces to a fill).</summary>
    /// <remarks>
    /// Hot path: one refill per coefficient guarantees 32 bits, enough for a code (at most 16 bits)
    /// and its value (at most 16 bits), so the symbol and value reads need no further checks.
    /// </remarks>
    private bool DecodeBaselineBlock(JpegComponent c, short[] block)
    {
        var dc = dcTables[c.DcTable]!;
        var ac = acTables[c.AcTable]!;
        if (bitCount < 32) Fill();
        var t = DecodeFilled(dc);
        if (t > 16) throw Error("corrupt entropy-coded data (coefficient size > 16 bits)");
        if (t != 0) c.DcPred += Extend(TakeBits(t), t);
        block[0] = (short)c.DcPred;
        var any = false;
        for (var k = 1; k < 64; k++)
        {
            if (bitCount < 32) Fill();
            var rs = DecodeFilled(ac);
            int r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                block[ZigZag[k]] = (short)Extend(TakeBits(s), s);
                any = true;
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
        return any;
    }

    /// <summary>Reads n (1..16) bits; the caller has made sure they are buffered.</summary>
    private int TakeBits(int n)
    {
        var v = (int)(bitBuf >> (64 - n));
        bitBuf <<= n;
        bitCount -= n;
        return v;
    }

    /// <summary>Decodes a symbol with at least 16 bits buffered.</summary>
    private int DecodeFilled(HuffmanTable t)
    {
        int e = t.Lookup[(int)(bitBuf >> (64 - HuffmanTable.LookBits))];
        if (e != 0)
        {
            var len = e >> 8;
            bitBuf <<= len;
            bitCount -= len;
            return e & 0xFF;
        }
        return DecodeSymbol(t);
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
