// `kiln status [--state-dir DIR] [--format text|json] [--clear COMPONENT [--reason TEXT]]`: the
// service's client. Reads the history the service keeps (kiln.db under the state folder) and prints
// one screen of text or the JSON the API's /v1/states gives; --clear ends every open condition of one
// component, recorded with who and when. Exit 0 healthy, 1 degraded or unhealthy, 2 bad input.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Health;
using Kiln.Core.Service;

namespace Kiln.Cli.Commands;

public static class StatusCommand
{
    public static Command Create(CliServices services)
    {
        var stateDir = CommandTree.Text(OptionNames.StateDir, "DIR", $"The service's state folder (default: $KILN_STATE_DIR, else {ServiceOptions.DefaultStateDir})");
        var format = CommandTree.Text(OptionNames.Format, "text|json", "One screen of text (default) or JSON");
        var clear = CommandTree.Text(OptionNames.Clear, "COMPONENT", "Clear a component's state (a GPU UUID, gpu3, a PCI address, 'mlx5_0 port 1', mc0, node); recorded with who and when");
        var reason = CommandTree.Text(OptionNames.Reason, "TEXT", "Why the state is cleared (with --clear; recorded)");
        var command = new Command("status", "The health service's view of this node: component states, reasons, suggested actions, recent changes")
        {
            stateDir, format, clear, reason,
        };
        command.SetAction(parse =>
        {
            var style = parse.GetValue(format)?.Trim().ToLowerInvariant() ?? "text";
            if (style is not ("text" or "json")) throw new UsageException(OptionNames.Format, $"unknown format '{style}' (known: text, json)");
            var folder = parse.GetValue(stateDir) ?? (Environment.GetEnvironmentVariable("KILN_STATE_DIR") is { Length: > 0 } env ? env : ServiceOptions.DefaultStateDir);
            var path = Path.Combine(folder, History.FileName);
            if (!File.Exists(path))
                throw new UsageException(OptionNames.StateDir, $"no history at {path}: is kiln service running here (or is its state folder elsewhere)?");
            var console = services.Console;
            var target = parse.GetValue(clear);
            if (parse.GetValue(reason) is not null && target is null) throw new UsageException(OptionNames.Reason, "goes with --clear");
            using var history = History.Open(path, w => console.Error.WriteLine($"kiln: warning: {w}"), readOnly: target is null);
            if (target is not null)
            {
                var who = Actor();
                var why = parse.GetValue(reason) ?? "no reason given";
                var cleared = new HealthLedger(history, HealthPolicy.Default).Clear(target, who, why, DateTime.UtcNow)
                              ?? throw new UsageException(OptionNames.Clear,
                                  $"no component '{target}' in {path} (known: {string.Join(", ", history.Components().Select(c => c.Display.Split(' ')[0]).Distinct())})");
                console.Out.WriteLine($"kiln status: cleared {cleared.Display} ({who}: {why}); it stays healthy until a check or burn finds something new");
            }
            var view = StatusView.From(history, HostName.Current);
            if (style == "json") console.Out.WriteLine(view.ToJson());
            else view.WriteText(console.Out, console.IsTerminal ? console.Width : int.MaxValue);
            return view.NodeState == HealthNames.Name(HealthState.Healthy) ? ExitCodes.Passed : ExitCodes.Failed;
        });
        return command;
    }

    // Who cleared it: the user behind sudo when there is one, and the host.
    private static string Actor()
    {
        var user = Environment.GetEnvironmentVariable("SUDO_USER") is { Length: > 0 } sudo ? $"{sudo} (via sudo)" : Environment.UserName;
        return $"{user}@{HostName.Current} (kiln status --clear)";
    }
}
