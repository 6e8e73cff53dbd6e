using System.Globalization;
using System.Text.RegularExpressions;

namespace ToMe.Cli.Commands;

/// <summary>
/// A labelled image folder for <c>tome eval</c>: a labels.csv (filename,class_index[,...]), or class subfolders named by
/// the class they hold, as an ImageNet WordNet id (n01440764, on a 1000-class model) or as a class index (0, 292).
/// Every label is checked against the model's classes: a wrong label would only show up as a wrong prediction.
/// </summary>
internal static partial class LabelledImages
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".gif", ".webp", ".tif", ".tiff"];

    /// <summary>What a class subfolder may be named, for the help text and errors.</summary>
    public const string FolderRule = "an ImageNet WordNet id such as n01440764 (on a model with the 1000 ImageNet-1k classes) or a class index such as 292";

    // The ImageNet-1k WordNet ids in sorted order: the class order of timm's ImageNet-1k heads (class i is the i-th id).
    private static readonly Lazy<string[]> ImageNetIds = new(() =>
    {
        using var stream = typeof(LabelledImages).Assembly.GetManifestResourceStream("ToMe.Cli.imagenet1k_wnids.txt")
                           ?? throw new InvalidOperationException("the ImageNet-1k WordNet id list is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    });

    /// <summary>The images and labels, in file order; no image at all is an error.</summary>
    /// <param name="classes">The model's number of classes: labels must lie in 0..classes-1.</param>
    public static List<(string Path, int Label)> Read(string dir, string? labelsPath, int classes)
    {
        labelsPath ??= File.Exists(Path.Combine(dir, "labels.csv")) ? Path.Combine(dir, "labels.csv") : null;
        if (labelsPath is not null)
            return ReadCsv(dir, labelsPath, classes);
        // Hidden folders (.ipynb_checkpoints, .git) are tools' files, not classes.
        var folders = Directory.GetDirectories(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToArray();
        if (folders.Length == 0)
            throw new FileNotFoundException($"{dir}: neither a labels.csv nor class subfolders");
        var result = new List<(string, int)>();
        foreach (var folder in folders)
        {
            int label = FolderClass(folder, classes);
            foreach (var file in Directory.GetFiles(folder).Where(IsImage).Order(StringComparer.Ordinal))
                result.Add((file, label));
        }
        if (result.Count == 0)
            throw new InvalidDataException($"no image could be evaluated: the class subfolders of {dir} hold no image files ({string.Join(", ", Extensions)})");
        return result;
    }

    internal static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>The class a subfolder holds, from its name.</summary>
    internal static int FolderClass(string folder, int classes)
    {
        string name = Path.GetFileName(folder);
        if (WordNetId().IsMatch(name))
        {
            if (classes != ImageNetIds.Value.Length)
                throw new FormatException($"{folder}: a WordNet id names an ImageNet-1k class, but the model has {classes} classes, not " +
                                          $"{ImageNetIds.Value.Length}; name the folder by class index (0 to {classes - 1}) or give --labels");
            int index = Array.BinarySearch(ImageNetIds.Value, name, StringComparer.Ordinal);
            if (index < 0)
                throw new FormatException($"{folder}: {name} is not one of the {ImageNetIds.Value.Length} ImageNet-1k WordNet ids");
            return index;
        }
        if (name.Length > 0 && name.All(char.IsAsciiDigit))
        {
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index >= classes)
                throw new FormatException($"{folder}: class index {name} is out of range: the model has {classes} classes (0 to {classes - 1})");
            return index;
        }
        throw new FormatException($"{folder}: a class subfolder must be named by {FolderRule}; " +
                                  "for other names give --labels (a CSV with columns filename,class_index)");
    }

    private static List<(string, int)> ReadCsv(string dir, string labelsPath, int classes)
    {
        var records = Csv.Read(File.ReadAllText(labelsPath), labelsPath);
        if (records.Count == 0)
            throw new FormatException($"{labelsPath}: empty");
        var header = records[0].Fields.ToList();
        int fileColumn = header.IndexOf("filename"), labelColumn = header.IndexOf("class_index");
        if (fileColumn < 0 || labelColumn < 0)
            throw new FormatException($"{labelsPath}: the header must name columns 'filename' and 'class_index', found '{string.Join(",", header)}'");
        var result = new List<(string, int)>();
        foreach (var (line, fields) in records.Skip(1))
        {
            if (fields.Length <= Math.Max(fileColumn, labelColumn) || fields[fileColumn].Length == 0
                || !int.TryParse(fields[labelColumn], NumberStyles.Integer, CultureInfo.InvariantCulture, out int label))
                throw new FormatException($"{labelsPath}:{line}: expected filename,class_index, found '{string.Join(",", fields)}'");
            if (label < 0 || label >= classes)
                throw new FormatException($"{labelsPath}:{line}: class_index {label} is out of range: the model has {classes} classes (0 to {classes - 1})");
            result.Add((Path.Combine(dir, fields[fileColumn]), label));
        }
        if (result.Count == 0)
            throw new InvalidDataException($"no image could be evaluated: {labelsPath} lists no images");
        return result;
    }

    [GeneratedRegex("^n[0-9]{8}$")]
    private static partial Regex WordNetId();
}
