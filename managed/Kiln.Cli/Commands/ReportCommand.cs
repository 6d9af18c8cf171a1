// `kiln report DIR... [--out DIR] [--baseline FILE] [--drain-list FILE] [--generate-baseline FILE]
// [--expect HOSTS] [--drain [--apply] [--max-drain PERCENT]]` (the Slurm options: ReportDrainOptions.cs):
// many nodes' burn folders -> fleet tables, outliers, drift, plots and report.html (docs/REPORT.md);
// kiln net probe folders among them -> pairs.csv, suspects.csv and the host their bad pairs share.
// Exit 0: report written, nothing to drain; 1: hosts to drain; 2: no usable run, or --baseline unusable.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Net;
using Kiln.Core.Profiles;
using Kiln.Core.Report;
using Kiln.Core.Results;

namespace Kiln.Cli.Commands;

public static class ReportCommand
{
    /// <summary>Input problems printed on stderr; the rest are in problems.csv and the page.</summary>
    private const int ProblemLines = 20;

    public static Command Create(CliServices services)
    {
        var inputs = new Argument<string[]>("DIR") { Description = "Run folders, or folders holding them (searched recursively for summary.json)", Arity = ArgumentArity.OneOrMore };
        var output = CommandTree.Text(OptionNames.Out, "DIR", "Report folder (default ./kiln-report/<utc time>)");
        var baseline = CommandTree.Text("--baseline", "FILE", "Compare every device against this profile's thresholds (a --generate-baseline file, or any profile)");
        var drain = CommandTree.Text("--drain-list", "FILE", "Write the hosts to drain, one per line: FAIL verdicts, baseline FAILs, slow outlier nodes");
        var generate = CommandTree.Text("--generate-baseline", "FILE", "Write a profile YAML from this (healthy) fleet: its own spread inside PASS (docs/REPORT.md)");
        var z = CommandTree.Text("--z-threshold", "Z", "Flag values with |robust z| >= Z (default 3.5)");
        var deviation = CommandTree.Text("--min-deviation", "PERCENT", "...and at least this far from the fleet median (default 2%)");
        var slurm = new ReportDrainOptions();
        var command = new Command("report", "Fleet report: many nodes' results -> statistics, outliers, drift, plots, HTML, drain list")
        {
            inputs, output, baseline, drain, generate, z, deviation, slurm.Expect, slurm.Drain, slurm.Apply, slurm.MaxDrain,
        };
        command.SetAction(parse =>
        {
            var console = services.Console;
            var clock = Stopwatch.StartNew();
            var options = new FleetOptions
            {
                ZThreshold = Number(parse.GetValue(z), "--z-threshold", 1, 100) ?? 3.5,
                MinDeviation = (Number(parse.GetValue(deviation)?.TrimEnd('%'), "--min-deviation", 0, 100) ?? 2) / 100,
                ExpectedHosts = slurm.ExpectedHosts(parse),
            };
            var maxDrain = slurm.MaxShare(parse);
            var outDir = Path.GetFullPath(parse.GetValue(output)
                ?? Path.Combine("kiln-report", DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)));
            ReportProblem? baselineProblem = null;
            if (parse.GetValue(baseline) is { } baselineFile)
            {
                try
                {
                    options = options with { Baseline = ProfileLoader.Load(baselineFile, "--baseline") };
                }
                catch (UsageException e)
                {
                    // The fleet is still reported; the exit code says the comparison asked for was not made.
                    baselineProblem = new ReportProblem(baselineFile, e.Message, "baseline not used");
                }
            }

            var report = FleetReport.Build(parse.GetValue(inputs)!, options, baselineProblem is null ? [] : [baselineProblem]);
            var problems = report.Problems;
            var analysed = clock.Elapsed;
            FleetOutput.Write(report, outDir);
            if (parse.GetValue(drain) is { } drainFile) FleetOutput.WriteDrainList(report, drainFile);
            if (parse.GetValue(generate) is { } baselineOut && report.Runs.Count > 0)
            {
                var name = Path.GetFileNameWithoutExtension(baselineOut);
                File.WriteAllText(baselineOut, BaselineWriter.Generate(report, name));
            }

            foreach (var p in problems.Take(ProblemLines)) console.Error.WriteLine($"kiln: warning: {p.File}: {p.Problem} ({p.Action})");
            if (problems.Count > ProblemLines) console.Error.WriteLine($"kiln: warning: {problems.Count - ProblemLines} more problems in {Path.Combine(outDir, "problems.csv")}");
            var o = console.Out;
            o.WriteLine($"kiln report: {report.Runs.Count} nodes ({report.Superseded.Count} older runs superseded), {report.Checks.Count} kiln check results, {report.Metrics.Count} metrics, " +
                        $"{report.Outliers.Count(x => x.Level == "node")} node outliers, {report.Outliers.Count(x => x.Level == "device")} device outliers, " +
                        $"{report.Drift.Count} drifting component values, {problems.Count} input problems ({clock.Elapsed.TotalSeconds:0.0} s: " +
                        $"{analysed.TotalSeconds:0.0} s reading and analysing, the rest writing)");
            foreach (var n in report.Nodes.Where(n => n.Drain).Take(ProblemLines)) o.WriteLine($"drain {n.Host}: {string.Join(" | ", n.DrainReasons)}");
            foreach (var host in report.Missing.Take(ProblemLines)) o.WriteLine($"drain {host}: missing, no results");
            foreach (var s in report.NetOnlySuspects.Where(s => !report.Missing.Contains(s.Host)).Take(ProblemLines))
                o.WriteLine($"drain {s.Host}: {FleetReport.NetReason(s)}");
            if (report.Net is { } net)
            {
                foreach (var link in net.Suspects.Where(s => !s.IsHost))
                    o.WriteLine($"network: suspect link {link.Host} -> {link.Peer} (drains no one: both hosts are healthy in their other pairs): {link.Why}");
                o.WriteLine($"network: {net.Pairs.Count} pair(s), {net.Pairs.Count(p => p.Status == nameof(VerdictStatus.FAIL))} FAIL, {net.Suspects.Count} suspect(s); " +
                            $"{NetAnalysis.PairsFile} and {NetAnalysis.SuspectsFile} in {outDir}");
            }
            o.WriteLine($"hosts to drain: {report.DrainHosts.Count}; report in {Path.Combine(outDir, "report.html")}");
            if (parse.GetValue(slurm.Drain)) ReportDrainOptions.Run(report, maxDrain, parse.GetValue(slurm.Apply), console);
            if (!report.HasResults)
            {
                console.Error.WriteLine("kiln: error: no usable run folder among the inputs");
                return ExitCodes.Usage;
            }
            return baselineProblem != null ? ExitCodes.Usage : report.ExitCode;
        });
        return command;
    }

    private static double? Number(string? text, string option, double min, double max)
    {
        if (text is null) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            throw new UsageException(option, $"'{text}' is not a number");
        if (x < min || x > max) throw new UsageException(option, $"{text} is not in {min}..{max}");
        return x;
    }
}
