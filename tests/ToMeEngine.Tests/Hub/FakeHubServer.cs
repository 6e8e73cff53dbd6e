using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace ToMe.Tests.Hub;

/// <summary>
/// A minimal HTTP/1.1 server on 127.0.0.1 that answers like the Hugging Face hub for one repository: resolve URLs
/// with X-Repo-Commit / ETag / X-Linked-* headers, optional CDN-style redirects, Range requests, and injectable
/// faults (a dropped or stalled connection, corrupt content). Records every request; stops by itself after 60 s.
/// </summary>
internal sealed class FakeHubServer : IAsyncDisposable
{
    public sealed record Request(string Method, string Path, string? Range, string? Authorization);

    public sealed record RepoFile(byte[] Content, string ETag, bool Lfs);

    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new(TimeSpan.FromSeconds(60));
    private readonly Task acceptLoop;
    private readonly ConcurrentBag<Task> connections = [];
    private int dropsLeft = 1;

    public FakeHubServer(string repo, string commit, IReadOnlyDictionary<string, byte[]> files)
    {
        Repo = repo;
        Commit = commit;
        foreach (var (name, content) in files)
        {
            bool lfs = name.EndsWith(".safetensors", StringComparison.Ordinal);
            // LFS files are named by their SHA-256; regular files by their git blob id, as on the hub.
            var etag = lfs ? Convert.ToHexStringLower(SHA256.HashData(content))
                : Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {content.Length}\0").Concat(content).ToArray()));
            Files[name] = new RepoFile(content, etag, lfs);
        }
        listener.Start();
        Endpoint = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        acceptLoop = AcceptLoopAsync();
    }

    public string Endpoint { get; }
    public string Repo { get; }
    public string Commit { get; }
    public Dictionary<string, RepoFile> Files { get; } = [];
    public ConcurrentQueue<Request> Requests { get; } = new();

    /// <summary>LFS files answer HEAD/GET on the resolve URL with a 302 to /cdn/ETAG, as the hub does.</summary>
    public bool RedirectLfsToCdn { get; init; }

    /// <summary>The first GET of an LFS file's body from byte 0 sends this many bytes, then the connection is cut.</summary>
    public int DropAfterBytes { get; init; } = -1;

    /// <summary>With <see cref="DropAfterBytes"/>: the connection is kept open but silent instead of being cut.</summary>
    public bool StallInsteadOfDrop { get; init; }

    /// <summary>LFS bodies are served with one byte flipped, while the ETag stays the hash of the real content.</summary>
    public bool CorruptLfsBody { get; init; }

    public int Count(string method) => Requests.Count(r => r.Method == method);

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        try
        {
            await acceptLoop;
            await Task.WhenAll(connections);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
        stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            connections.Add(Task.Run(() => ServeAsync(client)));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var head = await ReadHeadAsync(stream);
                if (head is null)
                    return;
                var lines = head.Split("\r\n");
                var parts = lines[0].Split(' ');
                var headers = lines.Skip(1).Where(l => l.Contains(':'))
                    .ToDictionary(l => l[..l.IndexOf(':')].Trim(), l => l[(l.IndexOf(':') + 1)..].Trim(), StringComparer.OrdinalIgnoreCase);
                var request = new Request(parts[0], parts[1], headers.GetValueOrDefault("Range"), headers.GetValueOrDefault("Authorization"));
                Requests.Enqueue(request);
                await RespondAsync(stream, request);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the client went away; nothing to answer
            }
        }
    }

    private async Task<string?> ReadHeadAsync(NetworkStream stream)
    {
        var buffer = new byte[16384];
        int length = 0;
        while (length < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(length), stop.Token);
            if (n == 0)
                return null;
            length += n;
            var text = Encoding.ASCII.GetString(buffer, 0, length);
            int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
                return text[..end];
        }
        return null;
    }

    private async Task RespondAsync(NetworkStream stream, Request request)
    {
        var path = request.Path;
        var resolvePrefix = $"/{Repo}/resolve/";
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            var file = Files.Values.FirstOrDefault(f => f.ETag == path["/cdn/".Length..]);
            if (file is null)
                await WriteAsync(stream, 404, [], null);
            else
                await ServeBodyAsync(stream, request, file, []);
            return;
        }
        if (!path.StartsWith(resolvePrefix, StringComparison.Ordinal))
        {
            await WriteAsync(stream, 401, [("X-Error-Code", "RepositoryNotFound")], null);
            return;
        }
        var rest = path[resolvePrefix.Length..].Split('/', 2);
        if (rest[0] != "main" && rest[0] != Commit)
        {
            await WriteAsync(stream, 404, [("X-Error-Code", "RevisionNotFound")], null);
            return;
        }
        if (!Files.TryGetValue(rest[1], out var repoFile))
        {
            await WriteAsync(stream, 404, [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", Commit)], null);
            return;
        }
        if (repoFile.Lfs && RedirectLfsToCdn)
        {
            await WriteAsync(stream, 302,
            [
                ("Location", $"{Endpoint}/cdn/{repoFile.ETag}"), ("X-Repo-Commit", Commit),
                ("X-Linked-Etag", $"\"{repoFile.ETag}\""), ("X-Linked-Size", repoFile.Content.Length.ToString()),
                ("ETag", "\"not-the-content-hash\""),
            ], null);
            return;
        }
        await ServeBodyAsync(stream, request, repoFile, [("X-Repo-Commit", Commit), ("ETag", $"\"{repoFile.ETag}\"")]);
    }

    private async Task ServeBodyAsync(NetworkStream stream, Request request, RepoFile file, List<(string, string)> headers)
    {
        var content = file.Content;
        if (file.Lfs && CorruptLfsBody)
        {
            content = (byte[])content.Clone();
            content[content.Length / 2] ^= 0xFF;
        }
        long from = 0;
        int status = 200;
        if (request.Range is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= content.Length)
            {
                await WriteAsync(stream, 416, [("Content-Range", $"bytes */{content.Length}")], null);
                return;
            }
            status = 206;
            headers.Add(("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}"));
        }
        headers.Add(("Accept-Ranges", "bytes"));
        var body = content.AsMemory((int)from);
        if (request.Method != "GET")
        {
            await WriteAsync(stream, status, headers, null, body.Length);
            return;
        }
        if (file.Lfs && from == 0 && DropAfterBytes >= 0 && Interlocked.Decrement(ref dropsLeft) == 0)
        {
            // Promise the whole body, send part of it, and cut the connection.
            await WriteAsync(stream, status, headers, body[..DropAfterBytes], body.Length);
            if (StallInsteadOfDrop)
                await Task.Delay(Timeout.Infinite, stop.Token);
            return;
        }
        await WriteAsync(stream, status, headers, body);
    }

    private async Task WriteAsync(NetworkStream stream, int status, List<(string Name, string Value)> headers, ReadOnlyMemory<byte>? body, long? contentLength = null)
    {
        var head = new StringBuilder($"HTTP/1.1 {status} {(HttpStatusCode)status}\r\n");
        foreach (var (name, value) in headers)
            head.Append($"{name}: {value}\r\n");
        head.Append($"Content-Length: {contentLength ?? body?.Length ?? 0}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), stop.Token);
        if (body is { } b)
            await stream.WriteAsync(b, stop.Token);
        await stream.FlushAsync(stop.Token);
    }
}
