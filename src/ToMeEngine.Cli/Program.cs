using System.CommandLine;
using ToMe.Cli;

// The `tome` command: each sub-command lives in its own file and only calls the library.
var root = new RootCommand("ToMeEngine: timm Vision Transformers with token merging, on CPU and CUDA.");
foreach (var command in CommandTable.All())
    root.Subcommands.Add(command);
var parse = root.Parse(args);
// A command line that does not parse is one line and exit code 2, like every other user error, rather than the whole help.
if (CliErrors.Usage(parse) is { } usage)
{
    Console.Error.WriteLine($"error: {usage}");
    return CliErrors.UsageExitCode;
}
return await parse.InvokeAsync();
