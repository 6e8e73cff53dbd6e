using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace ToMe.Weights.Hub;

/// <summary>
/// Downloads one blob into <c>blobs/ETAG.incomplete</c>, resuming what is there with <c>Range:</c> (after a dropped
/// connection, or a previous run of this engine or of Python), checks the size and, for LFS files whose ETag is
/// the SHA-256, the hash, and only then renames it to <c>blobs/ETAG</c>.
/// </summary>
internal static partial class BlobDownload
{
    private const int BufferSize = 1 << 20;

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    /// <summary>A failure worth resuming after: the connection dropped or stalled, or the server answered oddly once.</summary>
    private sealed class TransientException(string message) : Exception(message);

    /// <summary>The partial file and the hash of the bytes it holds, kept in step.</summary>
    private sealed class Partial(FileStream file, IncrementalHash? hash) : IDisposable
    {
        public FileStream File { get; } = file;
        public IncrementalHash? Hash { get; } = hash;
        public long Length { get; set; }

        public void Restart()
        {
            File.SetLength(0);
            File.Position = 0;
            Length = 0;
            Hash?.GetHashAndReset();
        }

        public void Dispose()
        {
            File.Dispose();
            Hash?.Dispose();
        }
    }

    public static async Task RunAsync(HubClient client, HubRepoId repo, HubFileMetadata meta, IProgress<HubProgress>? progress, CancellationToken cancellationToken)
    {
        var cache = client.Cache;
        var blob = cache.BlobPath(repo, meta.ETag);
        var incomplete = cache.IncompletePath(repo, meta.ETag);
        using var fileLock = await AcquireLockAsync(cache.LockPath(repo, meta.ETag), client.Options.LockTimeout, cancellationToken).ConfigureAwait(false);
        if (File.Exists(blob))
            return; // whoever held the lock finished it
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);

        bool verifyHash = Sha256Pattern().IsMatch(meta.ETag);
        var partial = new Partial(
            new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16, useAsync: true),
            verifyHash ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null);
        try
        {
            await ContinueFromExistingAsync(partial, meta.Size, cancellationToken).ConfigureAwait(false);
            progress?.Report(new HubProgress(repo.ToString(), meta.File, partial.Length, meta.Size));
            int failures = 0;
            while (partial.Length < meta.Size)
            {
                try
                {
                    await FetchAsync(client, repo, meta, partial, progress, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (IsTransient(e, cancellationToken))
                {
                    if (++failures > client.Options.MaxRetries)
                        throw new HubException($"{repo}: downloading {meta.File} failed {failures} times, last: {e.Message}; " +
                                               $"{partial.Length} of {meta.Size} bytes are kept in {incomplete} and the next run resumes from there", e);
                    await Task.Delay(client.Options.RetryDelay * failures, cancellationToken).ConfigureAwait(false);
                }
            }
            await partial.File.FlushAsync(cancellationToken).ConfigureAwait(false);
            partial.File.Flush(flushToDisk: true);
            if (partial.Hash is not null)
            {
                var actual = Convert.ToHexStringLower(partial.Hash.GetHashAndReset());
                if (actual != meta.ETag)
                {
                    partial.Dispose();
                    File.Delete(incomplete);
                    throw new HubException($"{repo}: {meta.File} as downloaded has SHA-256 {actual} but the hub declares {meta.ETag}; " +
                                           $"the download was discarded (run again; if it persists, {meta.DownloadUri.GetLeftPart(UriPartial.Authority)} serves corrupt data)");
                }
            }
        }
        finally
        {
            partial.Dispose();
        }
        try
        {
            File.Move(incomplete, blob, overwrite: false);
        }
        catch (IOException) when (File.Exists(blob))
        {
            File.Delete(incomplete); // someone not honouring the lock got there first, with the same verified content
        }
    }

    /// <summary>Counts and hashes the bytes a previous attempt left, so the download resumes after them.</summary>
    private static async Task ContinueFromExistingAsync(Partial partial, long size, CancellationToken cancellationToken)
    {
        if (partial.File.Length > size)
        {
            partial.Restart(); // not a prefix of this file
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            partial.File.Position = 0;
            int n;
            while ((n = await partial.File.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                partial.Hash?.AppendData(buffer, 0, n);
                partial.Length += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One GET from the current length to the end, or until the connection drops or stalls.</summary>
    private static async Task FetchAsync(HubClient client, HubRepoId repo, HubFileMetadata meta, Partial partial, IProgress<HubProgress>? progress, CancellationToken cancellationToken)
    {
        using var response = await client.GetAsync(meta.DownloadUri, partial.Length, cancellationToken).ConfigureAwait(false);
        int status = (int)response.StatusCode;
        if (status == 416)
        {
            // The range starts at or past the end: the partial file is not a prefix of this one after all.
            partial.Restart();
            throw new TransientException($"{meta.File}: the server refused to resume (HTTP 416)");
        }
        if (status is 429 or >= 500)
            throw new TransientException($"{meta.File}: the server answered HTTP {status}");
        if (!response.IsSuccessStatusCode || status is 203 or 204)
            throw client.StatusError(response, repo, meta.File);
        if (status == 206)
        {
            if (response.Content.Headers.ContentRange?.From != partial.Length)
            {
                partial.Restart();
                throw new TransientException($"{meta.File}: the server resumed at the wrong offset");
            }
        }
        else if (partial.Length > 0)
        {
            partial.Restart(); // the server ignored Range and sends the whole file
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        var sinceReport = Stopwatch.StartNew();
        try
        {
            while (true)
            {
                stall.CancelAfter(client.Options.ReadTimeout);
                int n = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token).ConfigureAwait(false);
                if (n == 0)
                    break;
                if (partial.Length + n > meta.Size)
                {
                    partial.Restart();
                    throw new HubException($"{repo}: the server sent more than the {meta.Size} bytes declared for {meta.File}");
                }
                await partial.File.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                partial.Hash?.AppendData(buffer, 0, n);
                partial.Length += n;
                // Reports are coarse enough that a console reporter can print each one.
                if (progress is not null && (sinceReport.ElapsedMilliseconds >= 100 || partial.Length == meta.Size))
                {
                    progress.Report(new HubProgress(repo.ToString(), meta.File, partial.Length, meta.Size));
                    sinceReport.Restart();
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TransientException($"{meta.File}: no data for {client.Options.ReadTimeout.TotalSeconds:0.#} s");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (partial.Length < meta.Size)
            throw new TransientException($"{meta.File}: the connection closed after {partial.Length} of {meta.Size} bytes");
    }

    private static bool IsTransient(Exception e, CancellationToken cancellationToken) => e switch
    {
        HubUnreachableException or TransientException or HttpRequestException => true,
        HubException => false,
        IOException => true, // a connection reset while reading the body
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    /// <summary>
    /// Takes <c>.locks/…/ETAG.lock</c> exclusively. On Unix .NET takes it with flock, as Python's filelock does, so
    /// this engine and huggingface_hub never write the same blob at once.
    /// </summary>
    private static async Task<FileStream> AcquireLockAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < timeout)
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new HubException($"{path} stayed locked for {timeout.TotalSeconds:0} s: another process is downloading the same file", e);
            }
        }
    }
}
