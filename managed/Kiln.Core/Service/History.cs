// The service's memory, in SQLite under the state folder (kiln.db): runs (checks and burns, with
// their outcome), findings, the open conditions and the components' states, every state change (with
// who made it), the boots an Xid was seen in, and small settings (the kernel-log cursor). It survives
// restarts; retention is bounded by age and size. A database that cannot be opened as one is moved
// aside and a fresh one started, with a warning. `kiln status` reads (and --clear writes) the same file.
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Kiln.Core.Service;

public sealed record RunRecord(long Id, string Kind, DateTime StartUtc, DateTime? EndUtc, string Status, string Detail, string? Folder, string BootId);

public sealed record Condition(string Component, string Code, HealthState State, SuggestedAction Action, string Reason,
    string Source, ClearedBy ClearedBy, DateTime SinceUtc, DateTime LastUtc);

public sealed record ComponentRecord(string Key, ComponentKind Kind, string Display, HealthState State, SuggestedAction Action,
    string Reason, DateTime SinceUtc);

public sealed record StateEvent(long Id, DateTime TimeUtc, string Component, string From, string To, string Action, string Reason, string Actor);

public sealed record FindingRecord(long RunId, DateTime TimeUtc, string Source, string Component, string Severity, string Code, string Message);

public sealed class History : IDisposable
{
    public const string FileName = "kiln.db";
    private const int SchemaVersion = 1;
    /// <summary>The status of a run that started and has not ended (yet, or ever: a SIGKILL).</summary>
    public const string Running = "RUNNING";
    public const string Incomplete = "INCOMPLETE";

    private readonly SqliteConnection _db;

    private History(SqliteConnection db, string path)
    {
        _db = db;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// Opens (or creates) the history. A file that is not a usable database is renamed
    /// kiln.db.corrupt-&lt;time&gt; and a new one created; <paramref name="warn"/> is told.
    /// </summary>
    public static History Open(string path, Action<string> warn, bool readOnly = false)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        try
        {
            return OpenChecked(path, readOnly);
        }
        catch (SqliteException e) when (!readOnly && e.SqliteErrorCode is 11 or 26)  // SQLITE_CORRUPT, SQLITE_NOTADB
        {
            var aside = $"{path}.corrupt-{DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}";
            SqliteConnection.ClearAllPools();
            File.Move(path, aside);
            foreach (var extra in new[] { "-wal", "-shm" })
            {
                if (File.Exists(path + extra)) File.Move(path + extra, aside + extra);
            }
            warn($"the history database {path} is corrupt ({e.Message.TrimEnd('.')}); moved it to {aside} and started a new one");
            return OpenChecked(path, readOnly);
        }
    }

    private static History OpenChecked(string path, bool readOnly)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 10,
        };
        var db = new SqliteConnection(builder.ToString());
        try
        {
            db.Open();
            var history = new History(db, path);
            history.Exec("PRAGMA busy_timeout = 10000");
            var check = history.Scalar("PRAGMA quick_check") as string;
            if (check != "ok") throw new SqliteException($"integrity check: {check}", 11);
            if (!readOnly) history.Migrate();
            return history;
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    private void Migrate()
    {
        // Incremental vacuum only takes effect when set before the first table exists.
        if (Convert.ToInt64(Scalar("SELECT count(*) FROM sqlite_master"), CultureInfo.InvariantCulture) == 0)
            Exec("PRAGMA auto_vacuum = INCREMENTAL");
        Exec("PRAGMA journal_mode = WAL");
        Exec("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, start_utc TEXT NOT NULL, end_utc TEXT,
                status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', folder TEXT, boot_id TEXT NOT NULL DEFAULT '');
            CREATE TABLE IF NOT EXISTS findings(id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, time_utc TEXT NOT NULL,
                source TEXT NOT NULL, component TEXT NOT NULL, severity TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS findings_time ON findings(time_utc);
            CREATE TABLE IF NOT EXISTS conditions(component TEXT NOT NULL, code TEXT NOT NULL, state TEXT NOT NULL, action TEXT NOT NULL,
                reason TEXT NOT NULL, source TEXT NOT NULL, cleared_by TEXT NOT NULL, since_utc TEXT NOT NULL, last_utc TEXT NOT NULL,
                PRIMARY KEY(component, code));
            CREATE TABLE IF NOT EXISTS components(key TEXT PRIMARY KEY, kind TEXT NOT NULL, display TEXT NOT NULL, state TEXT NOT NULL,
                action TEXT NOT NULL, reason TEXT NOT NULL, since_utc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, time_utc TEXT NOT NULL, component TEXT NOT NULL, from_state TEXT NOT NULL,
                to_state TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS events_time ON events(time_utc);
            CREATE TABLE IF NOT EXISTS xid_boots(component TEXT NOT NULL, xid INTEGER NOT NULL, boot_id TEXT NOT NULL, first_utc TEXT NOT NULL,
                PRIMARY KEY(component, xid, boot_id));
            """);
        SetMeta("schema_version", SchemaVersion.ToString(CultureInfo.InvariantCulture));
    }

    // ---- transactions ----

    /// <summary>Runs <paramref name="work"/> in one transaction: all of it is stored, or none.</summary>
    public void InTransaction(Action work)
    {
        using var tx = _db.BeginTransaction();
        work();
        tx.Commit();
    }

    // ---- meta ----

    public string? GetMeta(string key) => Scalar("SELECT value FROM meta WHERE key = $k", ("$k", key)) as string;

    public void SetMeta(string key, string value) =>
        Exec("INSERT INTO meta(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", ("$k", key), ("$v", value));

    // ---- runs ----

    public long BeginRun(string kind, DateTime startUtc, string bootId, string? folder = null)
    {
        Exec("INSERT INTO runs(kind, start_utc, status, folder, boot_id) VALUES($k, $s, $st, $f, $b)",
            ("$k", kind), ("$s", Stamp(startUtc)), ("$st", Running), ("$f", folder), ("$b", bootId));
        return Convert.ToInt64(Scalar("SELECT last_insert_rowid()"), CultureInfo.InvariantCulture);
    }

    public void EndRun(long id, DateTime endUtc, string status, string detail) =>
        Exec("UPDATE runs SET end_utc = $e, status = $s, detail = $d WHERE id = $id",
            ("$e", Stamp(endUtc)), ("$s", status), ("$d", detail), ("$id", id));

    /// <summary>A run still RUNNING when the service starts died with its process: INCOMPLETE. Returns them.</summary>
    public IReadOnlyList<RunRecord> MarkUnfinished(DateTime nowUtc, string why)
    {
        var open = QueryRuns(where: "status = $st", args: [("$st", Running)]);
        foreach (var run in open) EndRun(run.Id, nowUtc, Incomplete, why);
        return open;
    }

    /// <summary>A run that is only recorded (a burn that did not start, and why).</summary>
    public long RecordRun(string kind, DateTime timeUtc, string status, string detail, string bootId)
    {
        var id = BeginRun(kind, timeUtc, bootId);
        EndRun(id, timeUtc, status, detail);
        return id;
    }

    public IReadOnlyList<RunRecord> Runs(int limit = 50, string? kind = null) =>
        kind is null ? QueryRuns(limit: limit) : QueryRuns(limit: limit, where: "kind = $kind", args: [("$kind", kind)]);

    public RunRecord? LastRun(string kind, params string[] statuses)
    {
        var list = string.Join(",", statuses.Select((_, i) => $"$s{i}"));
        var args = statuses.Select((s, i) => ($"$s{i}", (object?)s)).Append(("$kind", kind)).ToArray();
        return QueryRuns(limit: 1, where: $"kind = $kind{(statuses.Length > 0 ? $" AND status IN ({list})" : "")}", args: args).FirstOrDefault();
    }

    private List<RunRecord> QueryRuns(int limit = int.MaxValue, string? where = null, (string, object?)[]? args = null)
    {
        using var cmd = Command($"SELECT id, kind, start_utc, end_utc, status, detail, folder, boot_id FROM runs{(where is null ? "" : " WHERE " + where)} ORDER BY id DESC LIMIT {limit}", args ?? []);
        using var r = cmd.ExecuteReader();
        var list = new List<RunRecord>();
        while (r.Read())
            list.Add(new RunRecord(r.GetInt64(0), r.GetString(1), Parse(r.GetString(2)), r.IsDBNull(3) ? null : Parse(r.GetString(3)),
                r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetString(7)));
        return list;
    }

    // ---- findings ----

    public void AddFinding(FindingRecord f) =>
        Exec("INSERT INTO findings(run_id, time_utc, source, component, severity, code, message) VALUES($r, $t, $s, $c, $sev, $code, $m)",
            ("$r", f.RunId), ("$t", Stamp(f.TimeUtc)), ("$s", f.Source), ("$c", f.Component), ("$sev", f.Severity), ("$code", f.Code), ("$m", f.Message));

    public IReadOnlyList<FindingRecord> Findings(int limit = 100, string? code = null)
    {
        using var cmd = Command($"SELECT run_id, time_utc, source, component, severity, code, message FROM findings{(code is null ? "" : " WHERE code = $code")} ORDER BY id DESC LIMIT {limit}",
            code is null ? [] : [("$code", code)]);
        using var r = cmd.ExecuteReader();
        var list = new List<FindingRecord>();
        while (r.Read()) list.Add(new FindingRecord(r.GetInt64(0), Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6)));
        return list;
    }

    public long CountFindings() => Convert.ToInt64(Scalar("SELECT count(*) FROM findings"), CultureInfo.InvariantCulture);

    // ---- conditions and components ----

    public IReadOnlyList<Condition> Conditions(string? component = null)
    {
        using var cmd = Command("SELECT component, code, state, action, reason, source, cleared_by, since_utc, last_utc FROM conditions"
                                + (component is null ? "" : " WHERE component = $c") + " ORDER BY component, code",
            component is null ? [] : [("$c", component)]);
        using var r = cmd.ExecuteReader();
        var list = new List<Condition>();
        while (r.Read())
            list.Add(new Condition(r.GetString(0), r.GetString(1), HealthNames.ParseState(r.GetString(2)), HealthNames.ParseAction(r.GetString(3)),
                r.GetString(4), r.GetString(5), Remedies.ParseClearedBy(r.GetString(6)), Parse(r.GetString(7)), Parse(r.GetString(8))));
        return list;
    }

    public void PutCondition(Condition c) =>
        Exec("""
            INSERT INTO conditions(component, code, state, action, reason, source, cleared_by, since_utc, last_utc)
            VALUES($c, $code, $st, $a, $r, $s, $cb, $since, $last)
            ON CONFLICT(component, code) DO UPDATE SET state = excluded.state, action = excluded.action, reason = excluded.reason,
                source = excluded.source, cleared_by = excluded.cleared_by, last_utc = excluded.last_utc
            """,
            ("$c", c.Component), ("$code", c.Code), ("$st", HealthNames.Name(c.State)), ("$a", HealthNames.Name(c.Action)), ("$r", c.Reason),
            ("$s", c.Source), ("$cb", Remedies.Name(c.ClearedBy)), ("$since", Stamp(c.SinceUtc)), ("$last", Stamp(c.LastUtc)));

    public void DeleteCondition(string component, string code) =>
        Exec("DELETE FROM conditions WHERE component = $c AND code = $code", ("$c", component), ("$code", code));

    public IReadOnlyList<ComponentRecord> Components()
    {
        using var cmd = Command("SELECT key, kind, display, state, action, reason, since_utc FROM components ORDER BY kind, display", []);
        using var r = cmd.ExecuteReader();
        var list = new List<ComponentRecord>();
        while (r.Read())
            list.Add(new ComponentRecord(r.GetString(0), ComponentRef.ParseKind(r.GetString(1)), r.GetString(2), HealthNames.ParseState(r.GetString(3)),
                HealthNames.ParseAction(r.GetString(4)), r.GetString(5), Parse(r.GetString(6))));
        return list;
    }

    public void PutComponent(ComponentRecord c) =>
        Exec("""
            INSERT INTO components(key, kind, display, state, action, reason, since_utc) VALUES($k, $kind, $d, $s, $a, $r, $since)
            ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, display = excluded.display, state = excluded.state,
                action = excluded.action, reason = excluded.reason, since_utc = excluded.since_utc
            """,
            ("$k", c.Key), ("$kind", ComponentRef.KindName(c.Kind)), ("$d", c.Display), ("$s", HealthNames.Name(c.State)),
            ("$a", HealthNames.Name(c.Action)), ("$r", c.Reason), ("$since", Stamp(c.SinceUtc)));

    // ---- events ----

    public void AddEvent(DateTime timeUtc, string component, string from, string to, string action, string reason, string actor) =>
        Exec("INSERT INTO events(time_utc, component, from_state, to_state, action, reason, actor) VALUES($t, $c, $f, $to, $a, $r, $actor)",
            ("$t", Stamp(timeUtc)), ("$c", component), ("$f", from), ("$to", to), ("$a", action), ("$r", reason), ("$actor", actor));

    public IReadOnlyList<StateEvent> Events(int limit = 50)
    {
        using var cmd = Command($"SELECT id, time_utc, component, from_state, to_state, action, reason, actor FROM events ORDER BY id DESC LIMIT {limit}", []);
        using var r = cmd.ExecuteReader();
        var list = new List<StateEvent>();
        while (r.Read())
            list.Add(new StateEvent(r.GetInt64(0), Parse(r.GetString(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7)));
        return list;
    }

    // ---- Xid escalation ----

    /// <summary>Notes that <paramref name="xid"/> was seen on the component in this boot; returns in how many boots it has been seen.</summary>
    public int RecordXidBoot(string component, int xid, string bootId, DateTime timeUtc)
    {
        Exec("INSERT OR IGNORE INTO xid_boots(component, xid, boot_id, first_utc) VALUES($c, $x, $b, $t)",
            ("$c", component), ("$x", xid), ("$b", bootId), ("$t", Stamp(timeUtc)));
        return Convert.ToInt32(Scalar("SELECT count(*) FROM xid_boots WHERE component = $c AND xid = $x", ("$c", component), ("$x", xid)), CultureInfo.InvariantCulture);
    }

    // ---- retention ----

    /// <summary>The database's size on disk, the write-ahead log included.</summary>
    public long SizeBytes() => FileSize(Path) + FileSize(Path + "-wal");

    /// <summary>
    /// Deletes findings, events and ended runs older than the retention, then the oldest of them while
    /// the database is over its size bound; open conditions and component states are never deleted.
    /// Returns the rows deleted.
    /// </summary>
    public long Prune(DateTime nowUtc, HistoryOptions options)
    {
        var cutoff = Stamp(nowUtc.AddDays(-options.RetentionDays));
        long deleted = 0;
        deleted += Exec("DELETE FROM findings WHERE time_utc < $c", ("$c", cutoff));
        deleted += Exec("DELETE FROM events WHERE time_utc < $c", ("$c", cutoff));
        deleted += Exec("DELETE FROM runs WHERE start_utc < $c AND status != $r", ("$c", cutoff), ("$r", Running));
        deleted += Exec("DELETE FROM xid_boots WHERE first_utc < $c", ("$c", cutoff));
        Compact();
        var bound = (long)options.MaxMib * 1024 * 1024;
        for (var round = 0; round < 50 && SizeBytes() > bound; round++)
        {
            // A tenth of the oldest history per round, findings first (they are most of it).
            var n = 0L;
            foreach (var table in new[] { "findings", "events", "runs" })
            {
                var rows = Convert.ToInt64(Scalar($"SELECT count(*) FROM {table}"), CultureInfo.InvariantCulture);
                if (rows == 0) continue;
                var take = Math.Max(1, rows / 10);
                var extra = table == "runs" ? $" WHERE status != '{Running}'" : "";
                n += Exec($"DELETE FROM {table} WHERE id IN (SELECT id FROM {table}{extra} ORDER BY id LIMIT {take})");
            }
            deleted += n;
            Compact();
            if (n == 0) break;
        }
        return deleted;
    }

    private void Compact()
    {
        Exec("PRAGMA wal_checkpoint(TRUNCATE)");
        Exec("PRAGMA incremental_vacuum");
        Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    public void Dispose() => _db.Dispose();

    // ---- plumbing ----

    public static string Stamp(DateTime utc) => utc.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static DateTime Parse(string text) =>
        DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);

    private static long FileSize(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    private SqliteCommand Command(string sql, (string Name, object? Value)[] args)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    private int Exec(string sql, params (string, object?)[] args)
    {
        using var cmd = Command(sql, args);
        return cmd.ExecuteNonQuery();
    }

    private object? Scalar(string sql, params (string, object?)[] args)
    {
        using var cmd = Command(sql, args);
        return cmd.ExecuteScalar();
    }
}
