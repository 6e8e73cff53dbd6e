namespace ToMe.Tests.Reliability;

/// <summary>Process resources a leak would grow, read from /proc on Linux (Process.HandleCount is not maintained there).</summary>
internal static class ResourceProbe
{
    public static bool Available => OperatingSystem.IsLinux() && Directory.Exists("/proc/self/fd");

    /// <summary>Open file descriptors of this process.</summary>
    public static int OpenFiles() => Available ? Directory.GetFiles("/proc/self/fd").Length : 0;

    /// <summary>OS threads of this process.</summary>
    public static int Threads() => Available ? Directory.GetDirectories("/proc/self/task").Length : 0;

    /// <summary>Paths of the files mapped into this process (memory-mapped safetensors among them).</summary>
    public static IReadOnlyList<string> MappedFiles()
    {
        if (!Available)
            return [];
        return File.ReadAllLines("/proc/self/maps")
            .Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6 && f[5].StartsWith('/'))
            .Select(f => f[5].Trim())
            // The runtime maps JIT-compiled code through memfd ("/memfd:doublemapper (deleted)"); that grows with tiering, not leaks.
            .Where(f => !f.StartsWith("/memfd:", StringComparison.Ordinal))
            .ToList();
    }

    /// <summary>Managed heap after full, compacting collections, finalizers included.</summary>
    public static long ManagedBytes()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
