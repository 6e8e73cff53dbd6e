// Prunes the self-contained publish that bench/gpu_check.sh packs for the GPU machine, whose one device call carries 64 MiB
// with the checkout: keeps the assemblies the entry assemblies reference, directly or through others, and drops the rest
// of the shared frameworks (MVC, Razor, SignalR, Identity, VSTest, ...), which nothing here can load by reference; then
// the named files that the device check never loads: the debugger's and tracer's native libraries, the standalone GCs,
// the browser driver of the page tests and Skia's native library (the CUDA tests and the benches decode no GIF or WebP).
//
//   dotnet run bench/gpu_pack_prune.cs -- APP_FOLDER ENTRY_ASSEMBLY...
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

if (args.Length < 2 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: dotnet run bench/gpu_pack_prune.cs -- APP_FOLDER ENTRY_ASSEMBLY...");
    return 2;
}
var app = args[0];
string[] neverLoaded =
[
    "libmscordaccore.so", "libmscordbi.so", "createdump", "libcoreclrtraceptprovider.so", "libclrgc.so", "libclrgcexp.so",
    "Selenium.WebDriver.dll", "libSkiaSharp.so",
];

// Assembly references, breadth first from the entry assemblies; a reference that has no file here is the runtime's to
// resolve (or never resolved), so it is not followed.
var referenced = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
var queue = new Queue<string>(args.Skip(1));
while (queue.TryDequeue(out var name))
{
    var path = Path.Combine(app, name + ".dll");
    if (!referenced.Add(name) || !File.Exists(path))
        continue;
    using var pe = new PEReader(File.OpenRead(path));
    if (!pe.HasMetadata)
        continue;
    var metadata = pe.GetMetadataReader();
    foreach (var handle in metadata.AssemblyReferences)
        queue.Enqueue(metadata.GetString(metadata.GetAssemblyReference(handle).Name));
}
foreach (var entry in args.Skip(1))
    if (!File.Exists(Path.Combine(app, entry + ".dll")))
    {
        Console.Error.WriteLine($"error: {app} has no {entry}.dll");
        return 1;
    }

var dropped = Directory.GetFiles(app, "*.dll").Where(f => !referenced.Contains(Path.GetFileNameWithoutExtension(f)))
    .Concat(neverLoaded.Select(n => Path.Combine(app, n)).Where(File.Exists)).ToList();
long bytes = dropped.Sum(f => new FileInfo(f).Length);
foreach (var file in dropped)
    File.Delete(file);
Console.WriteLine($"pruned {dropped.Count} files ({bytes / 1048576.0:F1} MiB) that the device check does not load");
return 0;
