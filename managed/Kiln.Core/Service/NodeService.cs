// The resident service's work, between its start and its stop: a health check every check.interval
// (and when the API asks), a burn inside burn.window when one is due and the node is idle, each
// stored in the history with the components' states, and kiln.prom rewritten after each. A burn takes
// the node lock; a user job that arrives mid-burn (a GPU process, the Slurm node allocated) cancels
// it, and it is recorded as CANCELLED, not as FAIL. Between runs it sleeps: no polling.
using System.Globalization;
using Kiln.Core.Health;
using Kiln.Core.Health.KernelLog;
using Kiln.Core.Plans;
using Kiln.Core.Runs;
using Kiln.Native;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Kiln.Core.Service;

public sealed class NodeService : IDisposable
{
    public const string CursorKey = "kmsg_cursor";
    public const string CheckKind = "check";
    public const string BurnKind = "burn";
    public const string NotStarted = "NOT_STARTED";
    public const string Cancelled = "CANCELLED";

    private readonly ServiceOptions _options;
    private readonly ILogger _log;
    private readonly Func<Registry> _registry;
    private readonly INodeActivity _activity;
    private readonly Func<IRunObserver> _observer;
    private readonly string _host;
    private readonly Lock _gate = new();   // the history's connection is one, and the API reads it from other threads
    private readonly SemaphoreSlim _wake = new(0);
    private readonly List<TaskCompletionSource<RunRecord>> _checkWaiters = [];
    private History? _history;
    private CheckReport? _lastCheck;
    private DateTime _nextBurnTry = DateTime.MinValue;
    private string? _lastNotStarted;

    public NodeService(ServiceOptions options, ILogger log, Func<Registry> registry, INodeActivity activity, Func<IRunObserver> observer, string host)
    {
        (_options, _log, _registry, _activity, _observer, _host) = (options, log, registry, activity, observer, host);
    }

    /// <summary>How to start a burn's device workers (null: in this process).</summary>
    public WorkerLaunch? Workers { get; init; }

    public ServiceOptions Options => _options;

    /// <summary>Opens the history, marks the runs a killed service left behind INCOMPLETE, prunes; then the service is ready.</summary>
    public void Start()
    {
        Directory.CreateDirectory(_options.StateDir);
        _history = History.Open(_options.DatabasePath, w => _log.LogWarning("{Warning}", w));
        var now = DateTime.UtcNow;
        foreach (var run in _history.MarkUnfinished(now, "the service stopped while it ran (killed, or the node went down); its results are not complete"))
            _log.LogWarning("{Kind} run {Id} that started {Start:u} did not finish: marked INCOMPLETE", run.Kind, run.Id, run.StartUtc);
        Guarded("prune the history", () => _history.Prune(now, _options.History));
        _log.LogInformation("kiln service: configuration {Source}, state in {StateDir}, a check every {Interval}, burns {Burns}",
            _options.Source, _options.StateDir, Profiles.Durations.Format(_options.Check.Interval),
            _options.Burn.Enabled ? $"{_options.Burn.Plan} in {_options.Burn.Window} every {Profiles.Durations.Format(_options.Burn.Every)}" : "off");
    }

    /// <summary>Runs until <paramref name="stop"/>: the first check at once, then on schedule.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var nextCheck = DateTime.UtcNow;
        while (!stop.IsCancellationRequested)
        {
            var now = DateTime.UtcNow;
            bool asked;
            lock (_gate) asked = _checkWaiters.Count > 0;
            if (asked || now >= nextCheck)
            {
                var run = Check();
                nextCheck = DateTime.UtcNow + _options.Check.Interval;
                List<TaskCompletionSource<RunRecord>> waiting;
                lock (_gate)
                {
                    waiting = [.. _checkWaiters];
                    _checkWaiters.Clear();
                }
                foreach (var w in waiting) w.TrySetResult(run);
            }
            if (BurnDue(DateTime.UtcNow)) await Task.Factory.StartNew(() => Burn(stop), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var wakeAt = nextCheck;
            if (_options.Burn.Enabled) wakeAt = Min(wakeAt, NextBurnChance(DateTime.UtcNow));
            var sleep = wakeAt - DateTime.UtcNow;
            if (sleep > TimeSpan.Zero)
            {
                try
                {
                    await _wake.WaitAsync(sleep < TimeSpan.FromDays(1) ? sleep : TimeSpan.FromDays(1), stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>A check now (the API's trigger); completes with its run once stored.</summary>
    public Task<RunRecord> RequestCheck()
    {
        var done = new TaskCompletionSource<RunRecord>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate) _checkWaiters.Add(done);
        _wake.Release();
        return done.Task;
    }

    /// <summary>Reads the history under the service's lock (for the API).</summary>
    public T Read<T>(Func<History, T> read)
    {
        lock (_gate) return read(_history ?? throw new InvalidOperationException("the service has not started"));
    }

    /// <summary>kiln.prom's text as it is now (also served at /metrics).</summary>
    public string MetricsText()
    {
        lock (_gate) return ServiceMetrics.Build(_history!, _lastCheck, _host).ToText();
    }

    // ---- checks ----

    private RunRecord Check()
    {
        var start = DateTime.UtcNow;
        var boot = KernelLogCursor.BootId(_options.SysfsRoot);
        long runId = 0;
        KernelLogCursor cursor;
        lock (_gate)
        {
            if (!Guarded("record the check's start", () => runId = _history!.BeginRun(CheckKind, start, boot)))
                return new RunRecord(0, CheckKind, start, null, History.Incomplete, "the history could not be written", null, boot);
            cursor = new KernelLogCursor(_options.SysfsRoot, _options.KernelLog, KernelLogCursor.Position.FromJson(_history!.GetMeta(CursorKey)));
        }
        CheckReport report;
        try
        {
            var (policy, profile) = HealthPolicyResolver.Resolve(_options.Check.Profile, _options.SysfsRoot);
            report = HealthCheck.Run(new CheckRequest(_options.SysfsRoot, null, null, policy, profile) { KernelLogReader = cursor }, _host, start);
            lock (_gate)
            {
                var changes = new List<StateChange>();
                var detail = $"{report.Verdict}: {report.CountOf(Severity.Fail)} FAIL, {report.CountOf(Severity.Warn)} WARN, {report.Skipped.Count} sources skipped, " +
                             $"{cursor.NewRecords} new kernel-log records, {report.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s";
                var stored = Guarded("store the check", () => _history!.InTransaction(() =>
                {
                    changes.AddRange(new HealthLedger(_history!, policy).ApplyCheck(report, runId, boot, start));
                    // The cursor moves with the findings it produced, or not at all.
                    if (cursor.Next is { } next) _history!.SetMeta(CursorKey, next.ToJson());
                    _history!.EndRun(runId, DateTime.UtcNow, report.Verdict, detail);
                }));
                if (!stored) return new RunRecord(runId, CheckKind, start, null, History.Incomplete, "the history could not be written", null, boot);
                _lastCheck = report;
                foreach (var c in changes) LogChange(c);
                _log.LogDebug("check {Id}: {Detail}", runId, detail);
                Guarded("prune the history", () => _history!.Prune(DateTime.UtcNow, _options.History));
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.LogError("check {Id} failed: {Error}", runId, e.Message);
            lock (_gate) Guarded("record the failed check", () => _history!.EndRun(runId, DateTime.UtcNow, History.Incomplete, $"the check failed: {e.Message}"));
        }
        WriteMetrics();
        lock (_gate) return _history!.Runs(1, CheckKind).FirstOrDefault(r => r.Id == runId) ?? new RunRecord(runId, CheckKind, start, null, History.Incomplete, "", null, boot);
    }

    // ---- burns ----

    private bool BurnDue(DateTime nowUtc) =>
        _options.Burn.Enabled && nowUtc >= _nextBurnTry && _options.Burn.Window.Contains(nowUtc.ToLocalTime()) && nowUtc >= DueAt();

    // When the next burn is due: `every` after the last completed one, or `retest_every` after it
    // while a component waits for a passing burn to clear it.
    private DateTime DueAt()
    {
        RunRecord? last;
        bool waiting;
        lock (_gate)
        {
            last = _history!.LastRun(BurnKind, "PASS", "WARN", "FAIL");
            waiting = _history!.Conditions().Any(c => c.ClearedBy == ClearedBy.Burn);
        }
        if (last is null) return DateTime.MinValue;
        var b = _options.Burn;
        return last.StartUtc + (waiting && b.RetestEvery < b.Every ? b.RetestEvery : b.Every);
    }

    // When a burn could next start: the next retry or due time, moved to the window's next opening.
    private DateTime NextBurnChance(DateTime nowUtc)
    {
        var b = _options.Burn;
        var at = Max(Max(_nextBurnTry, DueAt()), nowUtc);
        if (!b.Window.Always && !b.Window.Contains(at.ToLocalTime()))
        {
            var local = at.ToLocalTime();
            var opens = local.Date + b.Window.From;
            if (opens <= local) opens = opens.AddDays(1);
            at = opens.ToUniversalTime();
        }
        return at;
    }

    private void Burn(CancellationToken stop)
    {
        var now = DateTime.UtcNow;
        var boot = KernelLogCursor.BootId(_options.SysfsRoot);
        _nextBurnTry = now + _options.Check.Interval;
        if (_activity.Busy(new Dictionary<string, int>()) is { } busy)
        {
            NotStartedBecause($"the node is not idle: {busy}", now, boot);
            return;
        }
        RunLock node;
        var folder = Path.Combine(_options.StateDir, "runs", now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));
        try
        {
            node = RunLock.Acquire(_options.StateDir, $"kiln service burn, plan {_options.Burn.Plan}, results in {folder}", wait: false, _ => { }, stop);
        }
        catch (NodeBusyException e)
        {
            NotStartedBecause(e.Message, now, boot);
            return;
        }
        using (node)
        {
            long runId = 0;
            lock (_gate)
            {
                if (!Guarded("record the burn's start", () => runId = _history!.BeginRun(BurnKind, now, boot, folder))) return;
            }
            _lastNotStarted = null;
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
            string? userJob = null;
            string status, detail;
            IReadOnlyList<StateChange> changes = [];
            try
            {
                var plan = PlanLoader.Resolve(_options.Burn.Plan);
                using var job = BurnJob.Open(_registry(), _options.Burn.Backend == "all" ? null : _options.Burn.Backend, null);
                // Each GPU a worker burns shows that worker as one of its processes.
                var ours = job.Devices.Where(d => d.Info.Backend != "cpu" && d.Info.Uuid.Length > 0)
                    .ToDictionary(d => d.Info.Uuid, _ => 1, StringComparer.Ordinal);
                using var watch = new Timer(_ =>
                {
                    if (cancel.IsCancellationRequested || _activity.Busy(ours) is not { } why) return;
                    userJob = why;
                    _log.LogWarning("a user job arrived during the burn ({Why}): cancelling the burn", why);
                    cancel.Cancel();
                }, null, _options.Burn.IdlePoll, _options.Burn.IdlePoll);
                var request = new BurnRequest(plan, _options.Burn.Profile, null, _options.KernelLog, folder, ["service"], [])
                {
                    Workers = Workers,
                    Command = "service burn",
                };
                _log.LogInformation("burn {Id}: starting plan {Plan} (results in {Folder})", runId, plan.Name, folder);
                var outcome = job.Run(request, _host, _observer(), line => _log.LogInformation("{Line}", line), null, cancel.Token);
                var verdict = outcome.Result.Verdict.ToString();
                var cancelled = cancel.IsCancellationRequested;
                status = cancelled ? Cancelled : verdict;
                detail = cancelled ? CancelledBecause(userJob, stop)
                    : $"{verdict}: {outcome.Result.Verdicts.Count(v => v.Status == Results.VerdictStatus.FAIL)} FAIL, " +
                      $"{outcome.Result.Verdicts.Count(v => v.Status == Results.VerdictStatus.WARN)} WARN, run {outcome.RunId}";
                // A test the cancel cut short says nothing about the device: only what ran to its end is judged.
                var judged = cancelled ? outcome.Result.Verdicts.Where(v => !CutShort(v, outcome.Result.Outcomes)).ToList() : outcome.Result.Verdicts;
                lock (_gate)
                {
                    var complete = !cancelled && verdict != nameof(Evaluation.NodeVerdict.INCOMPLETE);
                    Guarded("store the burn", () => _history!.InTransaction(() =>
                    {
                        changes = new HealthLedger(_history!, HealthPolicy.Default).ApplyBurn(judged, outcome.Devices, complete, $"burn {runId} ({outcome.RunId})", DateTime.UtcNow);
                        _history!.EndRun(runId, DateTime.UtcNow, status, detail);
                    }));
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Cancelled where that throws (a health phase, a device opening): still a cancel, not a failure.
                (status, detail) = cancel.IsCancellationRequested ? (Cancelled, CancelledBecause(userJob, stop)) : (History.Incomplete, $"the burn could not run: {e.Message}");
                lock (_gate) Guarded("record the burn's end", () => _history!.EndRun(runId, DateTime.UtcNow, status, detail));
            }
            foreach (var c in changes) LogChange(c);
            var level = status is "PASS" or Cancelled ? LogLevel.Information : LogLevel.Warning;
            _log.Log(level, "burn {Id}: {Status}: {Detail}", runId, status, detail);
        }
        WriteMetrics();
    }

    private static string CancelledBecause(string? userJob, CancellationToken stop) =>
        userJob is not null ? $"cancelled: a user job arrived ({userJob})"
        : stop.IsCancellationRequested ? "cancelled: the service stopped"
        : "cancelled";

    private static bool CutShort(Results.VerdictRow v, IReadOnlyList<Evaluation.TestOutcome> outcomes) =>
        outcomes.Any(o => o.TestKey == v.Test && o.Device.Backend == v.Backend && o.Device.Index == v.Device
                          && o.End is Evaluation.TestEnd.Cancelled or Evaluation.TestEnd.NotRun);

    // Recorded once per reason, not at every retry.
    private void NotStartedBecause(string why, DateTime now, string boot)
    {
        if (why == _lastNotStarted) return;
        _lastNotStarted = why;
        _log.LogInformation("a burn is due but does not start: {Why}", why);
        lock (_gate) Guarded("record the burn that did not start", () => _history!.RecordRun(BurnKind, now, NotStarted, why, boot));
    }

    // ---- outputs ----

    private void WriteMetrics()
    {
        try
        {
            var text = MetricsText();
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(_options.PrometheusTextfile))!);
            Results.AtomicFile.WriteAllText(_options.PrometheusTextfile, text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SqliteException)
        {
            _log.LogError("could not write {File}: {Error}", _options.PrometheusTextfile, e.Message);
        }
    }

    private void LogChange(StateChange c)
    {
        var level = c.To == HealthState.Unhealthy ? LogLevel.Error : c.To == HealthState.Degraded ? LogLevel.Warning : LogLevel.Information;
        _log.Log(level, "{Component}: {From} -> {To} (action: {Action}): {Reason}", c.Component.Display,
            HealthNames.Name(c.From), HealthNames.Name(c.To), HealthNames.Describe(c.Action), c.Reason);
    }

    /// <summary>A history write that failed (a full disk) is logged; the service stays up. False when it failed.</summary>
    private bool Guarded(string what, Action work)
    {
        try
        {
            work();
            return true;
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            _log.LogError("could not {What} in {Db}: {Error}", what, _options.DatabasePath, e.Message);
            return false;
        }
    }

    private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;
    private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;

    public void Dispose()
    {
        _history?.Dispose();
        _wake.Dispose();
    }
}
