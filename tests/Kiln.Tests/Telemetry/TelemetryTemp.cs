// The telemetry tests share the health tests' temp folder: removed when this namespace's tests end too.
using Kiln.Tests.Health;

namespace Kiln.Tests.Telemetry;

[SetUpFixture]
public sealed class TelemetryTemp
{
    [OneTimeTearDown]
    public void RemoveAll() => HealthTemp.RemoveNow();
}
