using System.Text.RegularExpressions;

namespace ToMe.Weights.Hub;

/// <summary>
/// huggingface_hub's cache layout, so models downloaded by Python are reused here and the other way round:
/// <c>models--OWNER--NAME/blobs/ETAG</c> holds each file's content once, <c>snapshots/COMMIT/FILE</c> links to it
/// (a relative symlink, or a copy where links cannot be made), <c>refs/REVISION</c> holds the commit a branch
/// pointed at when last resolved, and <c>.locks/models--OWNER--NAME/ETAG.lock</c> serialises concurrent downloads.
/// </summary>
internal sealed partial class HubCache(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    public string RepoFolder(HubRepoId repo) => Path.Combine(Root, repo.CacheFolderName);

    public string BlobPath(HubRepoId repo, string etag) => Path.Combine(RepoFolder(repo), "blobs", CheckName(etag, "ETag"));

    /// <summary>A partial download; huggingface_hub resumes the same file, so either tool can finish the other's.</summary>
    public string IncompletePath(HubRepoId repo, string etag) => BlobPath(repo, etag) + ".incomplete";

    public string LockPath(HubRepoId repo, string etag) => Path.Combine(Root, ".locks", repo.CacheFolderName, CheckName(etag, "ETag") + ".lock");

    public string SnapshotFolder(HubRepoId repo, string commit) => Path.Combine(RepoFolder(repo), "snapshots", CheckCommit(commit));

    /// <summary>
    /// The snapshot folder for <paramref name="revision"/> if it holds every one of <paramref name="files"/>, else null.
    /// A branch name is looked up through <c>refs/</c>; a full commit hash is used directly.
    /// </summary>
    public string? FindSnapshot(HubRepoId repo, string revision, IReadOnlyList<string> files)
    {
        var commit = CommitOf(repo, revision);
        if (commit is null)
            return null;
        var folder = SnapshotFolder(repo, commit);
        // File.Exists follows the link, so a snapshot whose blob was deleted does not count as cached.
        return files.All(f => File.Exists(Path.Combine(folder, f))) ? folder : null;
    }

    /// <summary>The commit <paramref name="revision"/> resolves to in the cache, or null where the cache has not seen it.</summary>
    public string? CommitOf(HubRepoId repo, string revision)
    {
        if (CommitPattern().IsMatch(revision))
            return revision;
        var refPath = Path.Combine(RepoFolder(repo), "refs", CheckRevision(revision));
        try
        {
            var commit = File.Exists(refPath) ? File.ReadAllText(refPath).Trim() : null;
            return commit is not null && CommitPattern().IsMatch(commit) ? commit : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Records which commit a branch resolved to, replacing the old ref in one step.</summary>
    public void WriteRef(HubRepoId repo, string revision, string commit)
    {
        if (revision == commit)
            return; // huggingface_hub writes no ref for a revision that is itself a commit
        var refPath = Path.Combine(RepoFolder(repo), "refs", CheckRevision(revision));
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        if (File.Exists(refPath) && File.ReadAllText(refPath).Trim() == commit)
            return;
        var temp = $"{refPath}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, commit);
        File.Move(temp, refPath, overwrite: true);
    }

    /// <summary>Makes <c>snapshots/COMMIT/FILE</c> point at the blob; the link appears in one rename, never half made.</summary>
    public void LinkIntoSnapshot(HubRepoId repo, string commit, string file, string etag)
    {
        var blob = BlobPath(repo, etag);
        var target = Path.Combine(SnapshotFolder(repo, commit), CheckName(file, "file name"));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temp = $"{target}.{Guid.NewGuid():N}.tmp";
        try
        {
            try
            {
                // Relative, as huggingface_hub makes them, so the cache folder can be moved as a whole.
                File.CreateSymbolicLink(temp, Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                // Windows without developer mode cannot make links: keep a copy, as huggingface_hub does there.
                File.Copy(blob, temp, overwrite: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp) || new FileInfo(temp).LinkTarget is not null)
                File.Delete(temp);
        }
    }

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    // ETags and file names become path components: anything that could leave the cache folder is refused.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeNamePattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
    private static partial Regex RevisionPattern();

    internal static bool IsCommit(string text) => CommitPattern().IsMatch(text);

    private static string CheckCommit(string commit) =>
        CommitPattern().IsMatch(commit) ? commit : throw new HubException($"the hub answered with an invalid commit hash '{commit}'");

    private static string CheckName(string name, string what) =>
        SafeNamePattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal) ? name
            : throw new HubException($"the hub answered with an unusable {what} '{name}'");

    private static string CheckRevision(string revision) =>
        RevisionPattern().IsMatch(revision) && !revision.Contains("..", StringComparison.Ordinal) ? revision
            : throw new ArgumentException($"'{revision}' is not a valid revision (a branch, tag or commit hash)");
}
