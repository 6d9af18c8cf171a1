// `kiln plan list | show NAME|FILE` and `kiln profile list | show NAME|FILE`: the built-in plans and
// profiles printed as the YAML they are (a starting point for your own), and a user's file validated
// (exit 2 with file, line and field on the first mistake) and printed.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Plans;
using Kiln.Core.Profiles;

namespace Kiln.Cli.Commands;

public static class PlanCommand
{
    public static Command Create(ServiceAccess services)
    {
        var name = new Argument<string>("NAME|FILE") { Description = $"A built-in plan ({string.Join(", ", PlanLoader.BuiltInNames)}) or a YAML file" };
        var show = new Command("show", "Print a built-in plan's YAML, or validate and print a plan file") { name };
        show.SetAction(parse =>
        {
            var plan = PlanLoader.Resolve(parse.GetValue(name));
            var o = services.Get<IConsoleOutput>().Out;
            if (plan.Source != "built-in") o.WriteLine($"# {plan.Source}: valid plan '{plan.Name}', {plan.Tests.Count} tests ({string.Join(", ", plan.Tests.Select(t => t.Key))})");
            o.Write(plan.Text);
            return ExitCodes.Passed;
        });
        var list = new Command("list", "List the built-in plans");
        list.SetAction(_ =>
        {
            var o = services.Get<IConsoleOutput>().Out;
            foreach (var n in PlanLoader.BuiltInNames) o.WriteLine($"{n,-10} {PlanLoader.BuiltIn(n).Description}");
            return ExitCodes.Passed;
        });
        return new Command("plan", "Built-in and user plans: which tests, sizes, durations, timeouts, health checks") { list, show };
    }

    public static Command CreateProfile(ServiceAccess services)
    {
        var name = new Argument<string>("NAME|FILE") { Description = $"A built-in profile ({string.Join(", ", ProfileCatalog.BuiltInNames)}) or a YAML file" };
        var show = new Command("show", "Print a built-in profile's YAML, or validate and print a profile file") { name };
        show.SetAction(parse =>
        {
            var text = parse.GetValue(name)!;
            if (text.Trim().Equals(ProfileCatalog.Auto, StringComparison.OrdinalIgnoreCase))
                throw new UsageException("NAME", "auto is chosen when a burn starts; name a profile or a file");
            var profile = ProfileCatalog.Resolve(text, []);
            var o = services.Get<IConsoleOutput>().Out;
            if (profile.Source != "built-in") o.WriteLine($"# {profile.Source}: valid profile '{profile.Name}', {profile.Thresholds.Count} thresholds");
            o.Write(profile.Text);
            return ExitCodes.Passed;
        });
        var list = new Command("list", "List the built-in profiles");
        list.SetAction(_ =>
        {
            var o = services.Get<IConsoleOutput>().Out;
            foreach (var n in ProfileCatalog.BuiltInNames) o.WriteLine($"{n,-10} {ProfileCatalog.BuiltIn(n).Description}");
            return ExitCodes.Passed;
        });
        return new Command("profile", "SKU profiles: expected inventory, health policy and thresholds with units") { list, show };
    }
}
