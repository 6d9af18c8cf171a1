// `kiln plan list | show NAME|FILE`: the built-in plans printed as the YAML they are (a starting point
// for your own), and a user's file validated (exit 2 with file, line and field on the first mistake)
// and printed. `kiln profile` is its twin for profiles (ProfileCommand.cs).
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Plans;

namespace Kiln.Cli.Commands;

public static class PlanCommand
{
    public static Command Create(CliServices services)
    {
        var name = new Argument<string>("NAME|FILE") { Description = $"A built-in plan ({string.Join(", ", PlanLoader.BuiltInNames)}) or a YAML file" };
        var show = new Command("show", "Print a built-in plan's YAML, or validate and print a plan file") { name };
        show.SetAction(parse =>
        {
            var plan = PlanLoader.Resolve(parse.GetValue(name));
            var o = services.Console.Out;
            if (plan.Source != "built-in") o.WriteLine($"# {plan.Source}: valid plan '{plan.Name}', {plan.Tests.Count} tests ({string.Join(", ", plan.Tests.Select(t => t.Key))})");
            o.Write(plan.Text);
            return ExitCodes.Passed;
        });
        var list = new Command("list", "List the built-in plans");
        list.SetAction(_ =>
        {
            var o = services.Console.Out;
            foreach (var n in PlanLoader.BuiltInNames) o.WriteLine($"{n,-10} {PlanLoader.BuiltIn(n).Description}");
            return ExitCodes.Passed;
        });
        return new Command("plan", "Built-in and user plans: which tests, sizes, durations, timeouts, health checks") { list, show };
    }
}
