using System.Runtime.InteropServices;

namespace ToMe.Backends.Cpu.CodeGen;

/// <summary>
/// Pages holding generated machine code: mapped read-write, filled, then switched to read-execute (never writable and
/// executable at once). Linux and Windows only; <see cref="TryCreate"/> returns null elsewhere or when the system refuses
/// (e.g. a policy forbidding executable anonymous memory), and the caller falls back to compiled code.
/// </summary>
internal sealed unsafe partial class ExecutableMemory : IDisposable
{
    private void* pages;
    private readonly nuint size;

    private ExecutableMemory(void* pages, nuint size)
    {
        this.pages = pages;
        this.size = size;
    }

    /// <summary>The first byte of the code.</summary>
    public void* Pointer => pages != null ? pages : throw new ObjectDisposedException(nameof(ExecutableMemory));

    /// <summary>Executable pages holding <paramref name="code"/>, or null where that cannot be had.</summary>
    public static ExecutableMemory? TryCreate(ReadOnlySpan<byte> code)
    {
        if (code.IsEmpty)
            throw new ArgumentException("no code", nameof(code));
        nuint size = ((nuint)code.Length + 4095) & ~(nuint)4095;
        try
        {
            if (OperatingSystem.IsLinux())
                return Linux(code, size);
            if (OperatingSystem.IsWindows())
                return Windows(code, size);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return null;
    }

    private static ExecutableMemory? Linux(ReadOnlySpan<byte> code, nuint size)
    {
        const int read = 1, write = 2, exec = 4, mapPrivate = 2, mapAnonymous = 0x20;
        void* p = Mmap(null, size, read | write, mapPrivate | mapAnonymous, -1, 0);
        if (p == (void*)-1)
            return null;
        code.CopyTo(new Span<byte>(p, code.Length));
        if (Mprotect(p, size, read | exec) != 0)
        {
            _ = Munmap(p, size);
            return null;
        }
        return new ExecutableMemory(p, size);
    }

    private static ExecutableMemory? Windows(ReadOnlySpan<byte> code, nuint size)
    {
        const uint commitReserve = 0x3000, readWrite = 0x04, executeRead = 0x20;
        void* p = VirtualAlloc(null, size, commitReserve, readWrite);
        if (p == null)
            return null;
        code.CopyTo(new Span<byte>(p, code.Length));
        if (!VirtualProtect(p, size, executeRead, out _) || !FlushInstructionCache(GetCurrentProcess(), p, size))
        {
            _ = VirtualFree(p, 0, 0x8000);
            return null;
        }
        return new ExecutableMemory(p, size);
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~ExecutableMemory() => Release();

    private void Release()
    {
        void* p = pages;
        pages = null;
        if (p == null)
            return;
        if (OperatingSystem.IsWindows())
            _ = VirtualFree(p, 0, 0x8000); // MEM_RELEASE
        else
            _ = Munmap(p, size);
    }

    [LibraryImport("libc", EntryPoint = "mmap")]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect")]
    private static partial int Mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);

    [LibraryImport("kernel32")]
    private static partial void* VirtualAlloc(void* address, nuint size, uint allocationType, uint protection);

    [LibraryImport("kernel32")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool VirtualProtect(void* address, nuint size, uint protection, out uint oldProtection);

    [LibraryImport("kernel32")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool VirtualFree(void* address, nuint size, uint freeType);

    [LibraryImport("kernel32")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool FlushInstructionCache(nint process, void* address, nuint size);

    [LibraryImport("kernel32")]
    private static partial nint GetCurrentProcess();
}
