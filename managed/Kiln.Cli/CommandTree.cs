// The command tree: kiln inventory | check | burn | bench stream|memtest | plan | profile | report |
// bundle | slurm | service | status | net serve|probe|schedule|pairs|analyze|rdma. Values are read as text and parsed by
// Kiln.Core, so every bad value fails the same way: one
// line naming the option.
using System.CommandLine;
using Kiln.Cli.Commands;
using Kiln.Core;

namespace Kiln.Cli;

public static class CommandTree
{
    public static Option<bool> Verbose { get; } = new(OptionNames.Verbose)
    {
        Description = "Log details to stderr and show stack traces of internal errors",
        Recursive = true,
    };

    public static RootCommand Build(CliServices services)
    {
        var root = new RootCommand("kiln: GPU/CPU burn-in and acceptance")
        {
            InventoryCommand.Create(services),
            CheckCommand.Create(services),
            BurnCommand.Create(services),
            BenchCommand.Create(services),
            PlanCommand.Create(services),
            ProfileCommand.Create(services),
            ReportCommand.Create(services),
            BundleCommand.Create(services),
            SlurmCommand.Create(services),
            NetCommand.Create(services),
            WorkerCommand.Create(services),
            ServiceCommand.Create(),
            StatusCommand.Create(services),
            DevCommand.Create(services),
        };
        root.Options.Add(Verbose);
        // `kiln --version` is answered in Program before parsing; keep it listed in the help.
        foreach (var version in root.Options.OfType<VersionOption>()) version.Description = "Print kiln's and the native library's versions";
        return root;
    }

    /// <summary>An option whose value Kiln.Core parses (sizes, lists, counts).</summary>
    public static Option<string> Text(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description };

    public static Option<string[]> Repeatable(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, AllowMultipleArgumentsPerToken = false };
}
