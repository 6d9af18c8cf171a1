// One temp folder for every fixture root and result folder the health and telemetry tests make,
// removed when the tests of each of these namespaces end (so a failing test leaves nothing behind).
using Kiln.Tests.Core;

namespace Kiln.Tests.Health;

[SetUpFixture]
public sealed class HealthTemp
{
    private static readonly Lazy<string> Parent = new(() => TestEnvironment.NewTempFolder("kiln-health-tests"));

    /// <summary>A new empty folder under the shared parent.</summary>
    public static string NewFolder(string prefix)
    {
        var path = Path.Combine(Parent.Value, $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    [OneTimeTearDown]
    public void RemoveAll() => RemoveNow();

    public static void RemoveNow()
    {
        if (Parent.IsValueCreated && Directory.Exists(Parent.Value)) Directory.Delete(Parent.Value, recursive: true);
    }
}
