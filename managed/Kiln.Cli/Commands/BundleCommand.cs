// `kiln bundle RUN_DIR [--out FILE] [--kmsg FILE]`: one tar.gz for a vendor RMA - inventory with
// serials, failing verdicts, data errors, matching kernel-log lines, telemetry around the failure.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Report;

namespace Kiln.Cli.Commands;

public static class BundleCommand
{
    public static Command Create(CliServices services)
    {
        var run = new Argument<string>("RUN_DIR") { Description = "A kiln burn (or kiln check) result folder" };
        var output = CommandTree.Text(OptionNames.Out, "FILE", "The bundle (default ./kiln-rma-<host>-<run id>.tar.gz)");
        var kmsg = CommandTree.Text(OptionNames.Kmsg, "FILE", "Kernel log to search (default: the run's own kmsg.log, if it has one)");
        var command = new Command("bundle", "Pack what a vendor needs for an RMA of a failing device into one tar.gz") { run, output, kmsg };
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(run)!;
            if (!Directory.Exists(dir)) throw new UsageException("RUN_DIR", $"{dir} is not a folder");
            var result = RmaBundle.Write(dir, parse.GetValue(output), parse.GetValue(kmsg));
            var console = services.Console;
            if (result.FailingVerdicts == 0) console.Error.WriteLine("kiln: warning: the run has no FAIL verdict; the bundle holds its inventory only");
            console.Out.WriteLine($"kiln bundle: {result.Path} ({result.FailingVerdicts} failing verdicts, {result.KernelLogLines} kernel-log lines, " +
                                  $"{result.TelemetryRows} telemetry rows; {string.Join(", ", result.Files)})");
            return ExitCodes.Passed;
        });
        return command;
    }
}
