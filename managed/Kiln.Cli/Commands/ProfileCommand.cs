// `kiln profile list | show NAME|FILE`: the built-in SKU profiles printed as the YAML they are (a
// starting point for your own), and a user's file validated (exit 2 with file, line and field on the
// first mistake) and printed.
using System.CommandLine;
using Kiln.Cli.Output;
using Kiln.Core;
using Kiln.Core.Profiles;

namespace Kiln.Cli.Commands;

public static class ProfileCommand
{
    public static Command Create(CliServices services)
    {
        var name = new Argument<string>("NAME|FILE") { Description = $"A built-in profile ({string.Join(", ", ProfileCatalog.BuiltInNames)}) or a YAML file" };
        var show = new Command("show", "Print a built-in profile's YAML, or validate and print a profile file") { name };
        show.SetAction(parse =>
        {
            var text = parse.GetValue(name)!;
            if (text.Trim().Equals(ProfileCatalog.Auto, StringComparison.OrdinalIgnoreCase))
                throw new UsageException("NAME", "auto is chosen when a burn starts; name a profile or a file");
            var profile = ProfileCatalog.Resolve(text, []);
            var o = services.Console.Out;
            if (profile.Source != "built-in") o.WriteLine($"# {profile.Source}: valid profile '{profile.Name}', {profile.Thresholds.Count} thresholds");
            o.Write(profile.Text);
            return ExitCodes.Passed;
        });
        var list = new Command("list", "List the built-in profiles");
        list.SetAction(_ =>
        {
            var o = services.Console.Out;
            foreach (var n in ProfileCatalog.BuiltInNames) o.WriteLine($"{n,-10} {ProfileCatalog.BuiltIn(n).Description}");
            return ExitCodes.Passed;
        });
        return new Command("profile", "SKU profiles: expected inventory, health policy and thresholds with units") { list, show };
    }
}
