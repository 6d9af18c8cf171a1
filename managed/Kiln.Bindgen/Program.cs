// kiln-bindgen: writes managed/Kiln.Native/Generated/KilnNative.g.cs from kiln.h, or with --check
// only says whether the checked-in file is what it would write (CI fails on drift).
using System.Text;
using Kiln.Bindgen;

const string Usage = "usage: Kiln.Bindgen --header <kiln.h> --out <KilnNative.g.cs> [--check]";

string? header = null, output = null;
bool check = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--header" when i + 1 < args.Length: header = args[++i]; break;
        case "--out" when i + 1 < args.Length: output = args[++i]; break;
        case "--check": check = true; break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        default:
            Console.Error.WriteLine($"unknown or incomplete argument '{args[i]}'\n{Usage}");
            return 2;
    }
}
if (header is null || output is null)
{
    Console.Error.WriteLine(Usage);
    return 2;
}
if (!File.Exists(header))
{
    Console.Error.WriteLine($"header not found: {header}");
    return 2;
}

string generated;
try
{
    generated = Generator.Generate(header);
}
catch (Exception e) when (e is BindgenException or DllNotFoundException)
{
    Console.Error.WriteLine($"{header}: {e.Message}");
    return 3;
}

string? current = File.Exists(output) ? File.ReadAllText(output) : null;
if (check)
{
    if (current == generated)
    {
        Console.WriteLine($"{output} is up to date with {header}");
        return 0;
    }
    Console.Error.WriteLine(current is null
        ? $"{output} does not exist; run the generator without --check"
        : $"{output} differs from what {header} generates; rerun the generator without --check:");
    if (current is not null)
        foreach (var line in LineDiff.Summarize(current, generated, maxLines: 40)) Console.Error.WriteLine("  " + line);
    return 1;
}

// Leaving an unchanged file untouched keeps its timestamp, so nothing downstream rebuilds.
if (current != generated)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
    File.WriteAllText(output, generated, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    Console.WriteLine($"wrote {output}");
}
else
{
    Console.WriteLine($"{output} unchanged");
}
return 0;
