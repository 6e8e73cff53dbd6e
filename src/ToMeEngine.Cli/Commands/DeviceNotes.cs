namespace ToMe.Cli.Commands;

/// <summary>What every command that prints a timing says first when it ran on the emulated CUDA device.</summary>
internal static class DeviceNotes
{
    public const string Emulated = "note: the CUDA device is emulated on the CPU; these timings say nothing about any GPU";

    /// <summary>Writes <see cref="Emulated"/> to stderr when <paramref name="emulated"/>; returns it.</summary>
    public static bool WarnIfEmulated(bool emulated)
    {
        if (emulated)
            Console.Error.WriteLine(Emulated);
        return emulated;
    }
}
