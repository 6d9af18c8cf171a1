// `kiln dev ...` (hidden): tools for Kiln's own tests and benchmarks, not for a node. `kiln dev synth
// --nodes N --out DIR` writes a synthetic fleet of burn folders for kiln report (docs/REPORT.md).
using System.CommandLine;
using Kiln.Cli.Dev;
using Kiln.Cli.Output;
using Kiln.Core;

namespace Kiln.Cli.Commands;

public static class DevCommand
{
    public static Command Create(CliServices services) =>
        new("dev", "Tools for Kiln's own tests and benchmarks") { Hidden = true, Subcommands = { Synth(services) } };

    private static Command Synth(CliServices services)
    {
        var nodes = CommandTree.Text("--nodes", "N", "Nodes to write (default 100)");
        var devices = CommandTree.Text("--devices", "N", "GPUs per node (default 8)");
        var seed = CommandTree.Text(OptionNames.Seed, "N", "Random seed (default 1)");
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Where the node folders go (required)");
        var healthy = new Option<bool>("--healthy") { Description = "No planted faults (default: a slow node, a slow GPU, a memtest FAIL, a drifted runtime)" };
        var command = new Command("synth", "Write a synthetic fleet of burn result folders (tests, benchmarks)") { nodes, devices, seed, output, healthy };
        command.SetAction(parse =>
        {
            var spec = new SyntheticFleetSpec
            {
                Nodes = Values.Count(parse, nodes, min: 1) ?? 100,
                DevicesPerNode = Values.Count(parse, devices, min: 2) ?? 8,
                Seed = Values.Count(parse, seed, min: 0) ?? 1,
            };
            if (!parse.GetValue(healthy)) spec = spec.WithDefaultFaults();
            var dir = parse.GetValue(output) ?? throw new UsageException(OptionNames.Out, "required: where to write the fleet");
            var folders = SyntheticFleet.Write(spec, dir);
            services.Console.Out.WriteLine($"kiln dev synth: {folders.Count} nodes x {spec.DevicesPerNode} devices in {Path.GetFullPath(dir)}");
            return ExitCodes.Passed;
        });
        return command;
    }
}
