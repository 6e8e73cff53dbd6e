#!/usr/bin/env pwsh
# Thin wrapper over the dotnet commands, for PowerShell users.
#   ./build.ps1            build (Release)
#   ./build.ps1 test       run the test suite
#   ./build.ps1 run ARGS   run the `tome` command with ARGS
param([string]$Task = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest)
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
switch ($Task) {
    "build" { dotnet build ToMeEngine.sln -c Release }
    "test" { dotnet test ToMeEngine.sln -c Release @Rest }
    "run" { dotnet run --project src/ToMeEngine.Cli -c Release -- @Rest }
    default { throw "unknown task '$Task' (build | test | run)" }
}
exit $LASTEXITCODE
