// A mistake in what the user asked for (an option, a plan, a size): the CLI prints it as one line
// "kiln: error: <option>: <what is wrong>" and exits 2, before any test has run.
namespace Kiln.Core;

public sealed class UsageException(string option, string problem) : Exception($"{option}: {problem}")
{
    /// <summary>The option (or plan field) at fault, e.g. "--size".</summary>
    public string Option { get; } = option;

    /// <summary>What is wrong with it, without the option name.</summary>
    public string Problem { get; } = problem;
}
