using System.CommandLine;
using ToMe.Cli;

// The `tome` command: each sub-command lives in its own file and only calls the library.
var root = new RootCommand("ToMeEngine: timm Vision Transformers with token merging, on CPU and CUDA.");
foreach (var command in CommandTable.All())
    root.Subcommands.Add(command);
return await root.Parse(args).InvokeAsync();
