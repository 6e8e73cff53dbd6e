using System.CommandLine;
using ToMe.Cli.Commands;

namespace ToMe.Cli;

/// <summary>The list of sub-commands; one line per command file.</summary>
internal static class CommandTable
{
    public static IEnumerable<Command> All()
    {
        yield return ForwardCommand.Create();
        yield return InfoCommand.Create();
        yield return BenchCommand.Create();
        yield return ClassifyCommand.Create();
        yield return EvalCommand.Create();
        yield return VisualizeCommand.Create();
        yield return DevicesCommand.Create();
        yield return KernelsCommand.Create();
        yield return ServeCommand.Create();
    }
}
