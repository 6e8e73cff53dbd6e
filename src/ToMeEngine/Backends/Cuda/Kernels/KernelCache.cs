using System.Security.Cryptography;
using System.Text;

namespace ToMe.Backends.Cuda.Kernels;

/// <summary>
/// CUBINs on disk, keyed by a hash of the kernel source and every header, the target architecture,
/// the NVRTC options and the NVRTC version, so a second start compiles nothing. Each entry is a
/// <c>.cubin</c> plus a <c>.log</c> (the NVRTC/ptxas log, for resource reports); both are written to
/// a temporary file and renamed into place, so concurrent processes never see half a file. The log's first line holds the
/// CUBIN's SHA-256: an entry that does not match it (damaged on disk, or edited) is deleted and compiled again.
/// Location: <c>TOME_KERNEL_CACHE</c>, else $XDG_CACHE_HOME/tome/kernels or ~/.cache/tome/kernels
/// (LocalApplicationData\tome\kernels on Windows).
/// </summary>
internal sealed class KernelCache
{
    private const string FormatVersion = "tome-kernel-cache-2";

    // The .log's first line: the CUBIN's SHA-256. A driver is handed only a pointer (the image's size is in its own
    // headers), so a truncated or damaged entry must be caught here, not by loading it.
    private const string DigestPrefix = "sha256 ";

    public KernelCache(string directory) => Directory = directory;

    public string Directory { get; }

    /// <summary>The cache at the default (or <c>TOME_KERNEL_CACHE</c>) location.</summary>
    public static KernelCache Default() => new(DefaultDirectory());

    public static string DefaultDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("TOME_KERNEL_CACHE");
        if (!string.IsNullOrWhiteSpace(overridden))
            return Path.GetFullPath(overridden);
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "tome", "kernels");
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrWhiteSpace(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "tome", "kernels");
    }

    /// <summary>The hex SHA-256 key of one compilation's inputs.</summary>
    public static string Key(KernelSource source, IEnumerable<KernelSource> headers, IEnumerable<string> options, (int Major, int Minor) nvrtcVersion)
    {
        var text = new StringBuilder();
        text.Append(FormatVersion).Append('\n');
        text.Append("nvrtc ").Append(nvrtcVersion.Major).Append('.').Append(nvrtcVersion.Minor).Append('\n');
        foreach (var option in options)
            text.Append("option ").Append(option).Append('\n');
        foreach (var file in headers.Prepend(source))
            text.Append("file ").Append(file.FileName).Append(' ').Append(file.Text.Length).Append('\n').Append(file.Text).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public bool TryRead(string fileName, string arch, string key, out byte[] cubin, out string log)
    {
        var path = EntryPath(fileName, arch, key);
        cubin = [];
        log = "";
        try
        {
            if (!File.Exists(path + ".cubin"))
                return false;
            cubin = File.ReadAllBytes(path + ".cubin");
            var stored = File.Exists(path + ".log") ? File.ReadAllText(path + ".log") : "";
            int newline = stored.IndexOf('\n');
            if (cubin.Length > 0 && newline > 0 && stored[..newline] == DigestPrefix + Convert.ToHexStringLower(SHA256.HashData(cubin)))
            {
                log = stored[(newline + 1)..];
                return true;
            }
            cubin = [];
            File.Delete(path + ".cubin");
            File.Delete(path + ".log");
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Stores an entry; a cache that cannot be written is skipped, not fatal.</summary>
    public bool TryWrite(string fileName, string arch, string key, byte[] cubin, string log)
    {
        var path = EntryPath(fileName, arch, key);
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            // The log first: a reader treats the .cubin as the entry's commit point.
            WriteAtomically(path + ".log", Encoding.UTF8.GetBytes(DigestPrefix + Convert.ToHexStringLower(SHA256.HashData(cubin)) + "\n" + log));
            WriteAtomically(path + ".cubin", cubin);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private string EntryPath(string fileName, string arch, string key) =>
        Path.Combine(Directory, $"{Path.GetFileNameWithoutExtension(fileName)}.{arch}.{key[..32]}");

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }
}
