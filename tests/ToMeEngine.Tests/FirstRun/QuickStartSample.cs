using ToMe.Tests.Support;

namespace ToMe.Tests.FirstRun;

/// <summary>samples/QuickStart (the README's C# example): the files it names, and what a run of it prints.</summary>
internal static class QuickStartSample
{
    /// <summary>The example's inputs in <paramref name="dir"/>: the shipped fixture model under the example's model path, and pictures.</summary>
    public static void WriteInputs(string dir)
    {
        Directory.CreateDirectory(Path.Combine(dir, "models"));
        File.Copy(Fixtures.ModelPath("vit_p14_d3"), Path.Combine(dir, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k"));
        foreach (var (from, to) in ((string, string)[])[("baseline_420_q90.jpg", "cat.jpg"), ("gray_q90.jpg", "a.jpg"), ("png_rgb.png", "b.png"),
                                                        ("tiny_420_q90.jpg", "photos/1.jpg"), ("bmp_rgb.bmp", "photos/2.bmp")])
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, to))!);
            File.Copy(RepoData.Path(Path.Combine("images", from)), Path.Combine(dir, to));
        }
        File.WriteAllBytes(Path.Combine(dir, "photos", "3.jpg"), [0xFF, 0xD8, 0xFF]);
    }

    /// <summary>Checks the standard output of a run over <see cref="WriteInputs"/>'s files.</summary>
    public static void AssertOutput(string stdout)
    {
        var lines = stdout.ReplaceLineEndings("\n").Trim().Split('\n');
        Assert.Equal(5 + 1 + 3 + 1 + 2, lines.Length);
        Assert.All(lines[..5], l => Assert.Matches(@"^class \d+: \d+\.\d %$", l));
        Assert.StartsWith("a.jpg: class ", lines[5]);
        var photos = lines[6..9].Order(StringComparer.Ordinal).ToArray(); // in the order the folder lists them
        Assert.StartsWith(Path.Combine("photos", "1.jpg") + ": class ", photos[0]);
        Assert.StartsWith(Path.Combine("photos", "2.bmp") + ": class ", photos[1]);
        Assert.StartsWith(Path.Combine("photos", "3.jpg") + ": " + Path.Combine("photos", "3.jpg") + ": ", photos[2]);
        Assert.Matches(@"^\d+ tokens; patch grid 16x16x\d+$", lines[9]);
        Assert.StartsWith("ImageSharp: class ", lines[10]);
        Assert.StartsWith("SkiaSharp: class ", lines[11]);
    }
}
