//! The workspace database: one SQLite file in WAL mode with foreign keys and a busy timeout, and
//! an append-only list of migrations recorded in the database itself.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result};

/// The schema, one step per entry. Append only: a step that was applied must never change, and
/// [`migrate`] refuses a database whose recorded step differs from the one here.
pub const MIGRATIONS: &[&str] = &[
    // 1: content-addressed blobs and versioned data assets.
    "CREATE TABLE blobs (
        hash TEXT PRIMARY KEY,
        size_bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE assets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('table', 'images', 'text')),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE asset_versions (
        id INTEGER PRIMARY KEY,
        asset_id INTEGER NOT NULL REFERENCES assets(id),
        version INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        item_count INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        meta TEXT NOT NULL,
        UNIQUE (asset_id, version),
        UNIQUE (asset_id, content_hash)
    );
    CREATE TABLE version_files (
        version_id INTEGER NOT NULL REFERENCES asset_versions(id),
        position INTEGER NOT NULL,
        path TEXT NOT NULL,
        blob_hash TEXT NOT NULL REFERENCES blobs(hash),
        meta TEXT NOT NULL,
        PRIMARY KEY (version_id, position)
    );
    CREATE INDEX version_files_blob ON version_files(blob_hash);",
    // 2: cached EDA profiles, keyed by version and by the profile format they were computed in.
    "CREATE TABLE profiles (
        version_id INTEGER NOT NULL REFERENCES asset_versions(id),
        format INTEGER NOT NULL,
        computed_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (version_id, format)
    );",
    // 3: experiment tracking in MLflow's model, run artifacts, and the model registry. Metric
    // points are stored in chunks (one row per key per logged batch) so ingestion writes a row
    // per batch, not per point; `latest_metrics` holds each run's last value per key for search.
    "CREATE TABLE experiments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        artifact_location TEXT NOT NULL,
        lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active',
        CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER));
    CREATE TABLE experiment_tags (
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (experiment_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        name TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        start_time_ms INTEGER,
        end_time_ms INTEGER,
        lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
        artifact_uri TEXT NOT NULL
    );
    CREATE INDEX runs_experiment_start ON runs(experiment_id, start_time_ms);
    CREATE TABLE params (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX params_key_value ON params(key, value);
    CREATE TABLE run_tags (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX run_tags_key_value ON run_tags(key, value);
    CREATE TABLE metric_keys (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE
    );
    CREATE TABLE metric_chunks (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        key_id INTEGER NOT NULL REFERENCES metric_keys(id),
        points BLOB NOT NULL
    );
    CREATE INDEX metric_chunks_run_key ON metric_chunks(run_id, key_id);
    CREATE TABLE latest_metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        key_id INTEGER NOT NULL REFERENCES metric_keys(id),
        value REAL,
        is_nan INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (run_id, key_id)
    ) WITHOUT ROWID;
    CREATE INDEX latest_metrics_key_value ON latest_metrics(key_id, value);
    CREATE TABLE run_inputs (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        source_type TEXT NOT NULL,
        source TEXT NOT NULL,
        schema TEXT,
        profile TEXT,
        tags TEXT NOT NULL,
        asset_version_id INTEGER REFERENCES asset_versions(id),
        PRIMARY KEY (run_id, name, digest)
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        path TEXT PRIMARY KEY,
        blob_hash TEXT NOT NULL REFERENCES blobs(hash),
        size_bytes INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE registered_models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE registered_model_tags (
        model_id INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        description TEXT NOT NULL,
        source TEXT NOT NULL,
        run_uuid TEXT,
        run_link TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        current_stage TEXT NOT NULL,
        signature TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        UNIQUE (model_id, version)
    );
    CREATE INDEX model_versions_run ON model_versions(run_uuid);
    CREATE TABLE model_version_tags (
        version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (version_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE model_aliases (
        model_id INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (model_id, alias)
    ) WITHOUT ROWID;",
    // 4: MLflow 3's logged models (a model logged from a run, with its own artifacts, params and
    // tags), a run's model outputs, and the logged model a registered version came from.
    "CREATE TABLE logged_models (
        id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments(id),
        name TEXT NOT NULL,
        model_type TEXT,
        source_run_uuid TEXT,
        status TEXT NOT NULL,
        status_message TEXT,
        artifact_uri TEXT NOT NULL,
        lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('active', 'deleted')),
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX logged_models_experiment ON logged_models(experiment_id, created_at_ms);
    CREATE INDEX logged_models_run ON logged_models(source_run_uuid);
    CREATE TABLE logged_model_tags (
        model_id TEXT NOT NULL REFERENCES logged_models(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE logged_model_params (
        model_id TEXT NOT NULL REFERENCES logged_models(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (model_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE run_outputs (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        model_id TEXT NOT NULL REFERENCES logged_models(id),
        step INTEGER NOT NULL,
        PRIMARY KEY (run_id, model_id)
    ) WITHOUT ROWID;
    ALTER TABLE model_versions ADD COLUMN logged_model_id TEXT REFERENCES logged_models(id);",
    // 5: pipelines — registered components (their YAML and a snapshot of their code as a file
    // listing of blobs), registered environments, saved pipelines, the reuse cache of steps
    // (what a step with a given fingerprint produced, and in which run), and schedules.
    "CREATE TABLE components (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        yaml TEXT NOT NULL,
        code_files TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE TABLE environments (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        yaml TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE TABLE pipelines (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        yaml TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;
    CREATE TABLE step_cache (
        fingerprint TEXT PRIMARY KEY,
        run_uuid TEXT NOT NULL,
        outputs TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE schedules (
        id INTEGER PRIMARY KEY,
        pipeline TEXT NOT NULL,
        cron TEXT NOT NULL,
        experiment TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        last_run_at INTEGER,
        created_at INTEGER NOT NULL
    );",
    // 6: labeling — projects over an image or text asset version, their items with a status
    // kept for filtering, every submission of shapes (who, when, from where), reviews, and
    // model pre-labels.
    "CREATE TABLE label_projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        task TEXT NOT NULL,
        version_id INTEGER NOT NULL REFERENCES asset_versions(id),
        labels TEXT NOT NULL,
        consensus INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE label_items (
        project_id INTEGER NOT NULL REFERENCES label_projects(id),
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('unlabeled', 'labeled', 'accepted', 'rejected')),
        PRIMARY KEY (project_id, position)
    ) WITHOUT ROWID;
    CREATE INDEX label_items_status ON label_items(project_id, status, position);
    CREATE TABLE label_submissions (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        annotator TEXT NOT NULL,
        shapes TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        FOREIGN KEY (project_id, position) REFERENCES label_items(project_id, position)
    );
    CREATE INDEX label_submissions_item ON label_submissions(project_id, position, id);
    CREATE TABLE label_reviews (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        reviewer TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        comment TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        FOREIGN KEY (project_id, position) REFERENCES label_items(project_id, position)
    );
    CREATE INDEX label_reviews_item ON label_reviews(project_id, position, id);
    CREATE TABLE label_predictions (
        project_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        model TEXT NOT NULL,
        shapes TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (project_id, position, model),
        FOREIGN KEY (project_id, position) REFERENCES label_items(project_id, position)
    ) WITHOUT ROWID;",
    // 7: an item's id in the label file it was imported from (a COCO image id, a Label Studio
    // task id), so an export in that format writes the same id back; metrics logged for an
    // MLflow 3 logged model (every point, with the dataset it was measured on; the model need
    // not exist yet, as in MLflow); the logged models a run took as inputs.
    "ALTER TABLE label_items ADD COLUMN source_id INTEGER;
    CREATE TABLE logged_model_metrics (
        id INTEGER PRIMARY KEY,
        model_id TEXT NOT NULL,
        run_uuid TEXT NOT NULL,
        key TEXT NOT NULL,
        value REAL,
        is_nan INTEGER NOT NULL DEFAULT 0,
        timestamp_ms INTEGER NOT NULL,
        step INTEGER NOT NULL,
        dataset_name TEXT,
        dataset_digest TEXT
    );
    CREATE INDEX logged_model_metrics_model ON logged_model_metrics(model_id, key);
    CREATE TABLE run_model_inputs (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        model_id TEXT NOT NULL,
        PRIMARY KEY (run_id, model_id)
    ) WITHOUT ROWID;",
    // 8: leases — which one of the processes holding a workspace runs a kind of background work
    // (schedules now; endpoints and monitors next): held until it expires unless renewed.
    "CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 9: gated promotion — a policy per registered model (its YAML as written), approvals of a
    // version for an alias, and every promotion decision with its gates as they were.
    "CREATE TABLE promotion_policies (
        model TEXT PRIMARY KEY,
        yaml TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE promotion_approvals (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        alias TEXT NOT NULL,
        approver TEXT NOT NULL,
        comment TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (model, version, alias, approver)
    ) WITHOUT ROWID;
    CREATE TABLE promotion_decisions (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        alias TEXT NOT NULL,
        promoted INTEGER NOT NULL,
        evaluation TEXT NOT NULL,
        decided_by TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX promotion_decisions_by_model ON promotion_decisions (model, id);",
    // 10: online endpoints (their spec as JSON, address, keys) and their deployments (the spec,
    // the model version it resolved to, and what the serving process last found of it).
    "CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL UNIQUE,
        key_required INTEGER NOT NULL,
        primary_key TEXT NOT NULL,
        secondary_key TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE deployments (
        endpoint TEXT NOT NULL REFERENCES endpoints(name),
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (endpoint, name)
    ) WITHOUT ROWID;",
    // 11: a deployment's health per window of the serving process: requests, errors (answers
    // that are not 2xx) and latency quantiles in milliseconds.
    "CREATE TABLE deployment_health (
        endpoint TEXT NOT NULL,
        deployment TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        seconds REAL NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        p50_ms REAL NOT NULL,
        p95_ms REAL NOT NULL,
        p99_ms REAL NOT NULL,
        PRIMARY KEY (endpoint, deployment, at_ms)
    ) WITHOUT ROWID;",
    // 12: what the serving process says of a deployment (its model loaded or not, answers it
    // failed), the last thousand lines kept per deployment.
    "CREATE TABLE deployment_logs (
        id INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        deployment TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        line TEXT NOT NULL
    );
    CREATE INDEX deployment_logs_by_deployment ON deployment_logs (endpoint, deployment, id);",
    // 13: what a deployment runs in, resolved when it is put: its environment and its scoring
    // code's files (JSON; `{}` for a model scored in process).
    "ALTER TABLE deployments ADD COLUMN runtime TEXT NOT NULL DEFAULT '{}';",
    // 14: data collected by online deployments: Parquet parts in the blob store, one row each,
    // joined into a data asset version once their window has passed.
    "CREATE TABLE collected_parts (
        id INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        deployment TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('model_inputs', 'model_outputs')),
        window_start_ms INTEGER NOT NULL,
        window_ms INTEGER NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        blob_hash TEXT NOT NULL REFERENCES blobs(hash),
        asset_version_id INTEGER REFERENCES asset_versions(id)
    );
    CREATE INDEX collected_parts_open ON collected_parts (asset_version_id, window_start_ms);",
    // 15: batch endpoints, their deployments (the model version each resolved to and what it
    // runs in), and their jobs: what each scores, its progress and outcome, its failed rows.
    "CREATE TABLE batch_endpoints (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE batch_deployments (
        endpoint TEXT NOT NULL REFERENCES batch_endpoints(name),
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        runtime TEXT NOT NULL,
        pipeline TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (endpoint, name)
    ) WITHOUT ROWID;
    CREATE TABLE batch_jobs (
        -- Never reused: an asset's source names its job by id.
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint TEXT NOT NULL,
        deployment TEXT NOT NULL,
        input TEXT NOT NULL,
        output TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        rows_total INTEGER NOT NULL DEFAULT 0,
        rows_done INTEGER NOT NULL DEFAULT 0,
        rows_failed INTEGER NOT NULL DEFAULT 0,
        failures TEXT NOT NULL DEFAULT '[]',
        message TEXT NOT NULL DEFAULT '',
        run_id TEXT,
        output_version_id INTEGER REFERENCES asset_versions(id),
        created_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER,
        finished_at_ms INTEGER,
        heartbeat_ms INTEGER
    );
    CREATE INDEX batch_jobs_by_endpoint ON batch_jobs (endpoint, id);",
    // 16: how much of an endpoint's collected data is kept (collection/retention.rs).
    "CREATE TABLE collection_limits (
        endpoint TEXT PRIMARY KEY,
        retention_days INTEGER,
        max_bytes INTEGER
    ) WITHOUT ROWID;",
    // 17: monitors, their runs, alerts and the actions alerts start (monitoring/). Lineage
    // is in the rows: a run's inputs name asset versions, an alert its first and last runs,
    // an action run its alert and the pipeline run it started.
    "CREATE TABLE monitors (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        cooldown_ms INTEGER NOT NULL,
        last_due_ms INTEGER,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE monitor_runs (
        id INTEGER PRIMARY KEY,
        monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
        window_start_ms INTEGER NOT NULL,
        window_end_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        run_id TEXT,
        results TEXT,
        backtest INTEGER NOT NULL DEFAULT 0,
        started_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER
    );
    CREATE INDEX monitor_runs_by_monitor ON monitor_runs (monitor_id, window_end_ms);
    CREATE TABLE monitor_run_inputs (
        monitor_run_id INTEGER NOT NULL REFERENCES monitor_runs(id) ON DELETE CASCADE,
        signal TEXT NOT NULL,
        role TEXT NOT NULL,
        asset_version_id INTEGER NOT NULL REFERENCES asset_versions(id),
        PRIMARY KEY (monitor_run_id, signal, role, asset_version_id)
    ) WITHOUT ROWID;
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
        signal TEXT NOT NULL,
        feature TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        threshold REAL NOT NULL,
        window_start_ms INTEGER NOT NULL,
        window_end_ms INTEGER NOT NULL,
        first_run_id INTEGER NOT NULL REFERENCES monitor_runs(id),
        last_run_id INTEGER NOT NULL REFERENCES monitor_runs(id),
        occurrences INTEGER NOT NULL DEFAULT 1,
        opened_at_ms INTEGER NOT NULL,
        last_seen_at_ms INTEGER NOT NULL,
        acknowledged_by TEXT,
        acknowledged_at_ms INTEGER
    );
    CREATE INDEX alerts_by_monitor ON alerts (monitor_id, signal, feature, metric, last_seen_at_ms);
    CREATE TABLE monitor_actions (
        id INTEGER PRIMARY KEY,
        monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        config TEXT NOT NULL
    );
    CREATE TABLE action_runs (
        id INTEGER PRIMARY KEY,
        action_id INTEGER REFERENCES monitor_actions(id) ON DELETE SET NULL,
        monitor_run_id INTEGER NOT NULL REFERENCES monitor_runs(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        pipeline_run_id TEXT,
        labeling_project TEXT,
        started_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER
    );
    CREATE TABLE alert_action_runs (
        alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        action_run_id INTEGER NOT NULL REFERENCES action_runs(id) ON DELETE CASCADE,
        PRIMARY KEY (alert_id, action_run_id)
    ) WITHOUT ROWID;",
    // 18: table rows as labeling items — a row's fields (JSON `[[column, text or null], …]`)
    // kept with its item, why it was sent, and the monitor action run that sent it (lineage
    // from an alert to the items people label).
    "ALTER TABLE label_items ADD COLUMN data TEXT;
    ALTER TABLE label_items ADD COLUMN reason TEXT;
    ALTER TABLE label_items ADD COLUMN action_run_id INTEGER REFERENCES action_runs(id) ON DELETE SET NULL;
    CREATE INDEX label_items_by_name ON label_items(project_id, name);",
    // 19: datastores (S3-compatible object stores): the YAML's fields as JSON; credentials are
    // names of environment variables or profiles, never secrets.
    "CREATE TABLE datastores (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 20: `lathe sync`: which manifest in a datastore is which thing here, with the hash of
    // the manifest and the object's ETag as last written or read (push: unchanged ones are not
    // written again, nor one someone else changed since); and the multipart uploads a push
    // has under way, so the next one resumes them.
    "CREATE TABLE sync_map (
        datastore TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('push', 'pull')),
        remote TEXT NOT NULL,
        local TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        etag TEXT NOT NULL,
        synced_at_ms INTEGER NOT NULL,
        PRIMARY KEY (datastore, direction, remote)
    ) WITHOUT ROWID;
    CREATE TABLE sync_uploads (
        datastore TEXT NOT NULL,
        key TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        part_bytes INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        PRIMARY KEY (datastore, key)
    ) WITHOUT ROWID;",
    // 21: compute targets (Ray clusters): the YAML's fields as JSON; a token is the name of the
    // environment variable holding it, never the token.
    "CREATE TABLE computes (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens another connection to a database that [`open`] already brought up to date.
pub fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// An in-memory database with the full schema, for tests.
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate(&mut conn, Path::new(":memory:"))?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Applies every migration not yet recorded, each in its own transaction with its record. A
/// database that has them all is checked with reads alone, so opening a workspace never waits
/// behind another process's writer.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    if up_to_date(conn, path)? {
        return Ok(());
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            sql_hash TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )?;
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if found > known {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        let hash = migration_hash(sql);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let recorded: Option<String> = tx
            .query_row(
                "SELECT sql_hash FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        match recorded {
            Some(recorded) if recorded == hash => {}
            Some(_) => return Err(Error::EditedMigration { version }),
            None => {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, sql_hash, applied_at) VALUES (?1, ?2, ?3)",
                    params![version, hash, now_secs()],
                )?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

/// Whether every migration is recorded, as written here: read without a write lock. A newer
/// schema or an edited migration is an error.
fn up_to_date(conn: &Connection, path: &Path) -> Result<bool> {
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(false);
    }
    let mut stmt = conn.prepare("SELECT version, sql_hash FROM schema_migrations")?;
    let recorded = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let known = MIGRATIONS.len() as i64;
    if let Some(found) = recorded
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| *v > known)
        .max()
    {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (version, hash) in &recorded {
        let index = usize::try_from(*version - 1).unwrap_or(usize::MAX);
        if MIGRATIONS
            .get(index)
            .is_some_and(|sql| migration_hash(sql) != *hash)
        {
            return Err(Error::EditedMigration { version: *version });
        }
    }
    Ok(recorded.len() == MIGRATIONS.len())
}

/// The fingerprint recorded for an applied migration.
pub fn migration_hash(sql: &str) -> String {
    blake3::hash(sql.as_bytes()).to_hex().to_string()
}

/// Whether any record refers to blob `hash`: the `blobs` table, or (in workspaces from before
/// component code was recorded there) a registered component's code listing.
pub fn blob_referenced(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)
             OR EXISTS (SELECT 1 FROM components, json_each(components.code_files) AS f
                        WHERE json_extract(f.value, '$[1]') = ?1)",
        [hash],
        |r| r.get(0),
    )?)
}

/// Every blob hash a record refers to (see [`blob_referenced`]), for a sweep of the store.
pub fn referenced_blobs(conn: &Connection) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare(
        "SELECT hash FROM blobs
         UNION SELECT json_extract(f.value, '$[1]') FROM components, json_each(components.code_files) AS f",
    )?;
    let hashes = stmt
        .query_map([], |r| r.get::<_, Option<String>>(0))?
        .filter_map(std::result::Result::transpose)
        .collect::<rusqlite::Result<_>>()?;
    Ok(hashes)
}

/// Whether `error` is SQLite refusing a row that a UNIQUE or PRIMARY KEY constraint already
/// holds (told by its code, not its text).
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Seconds since the Unix epoch; the store's one notion of time.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(conn: &Connection) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare("SELECT version, sql_hash FROM schema_migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn migrations_apply_once_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lathe.db");
        let conn = open(&path).unwrap();
        let first = applied(&conn);
        assert_eq!(first.len(), MIGRATIONS.len());
        drop(conn);
        let conn = open(&path).unwrap();
        assert_eq!(applied(&conn), first);
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lathe.db");
        let conn = open(&path).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET sql_hash = 'x' WHERE version = 1",
            [],
        )
        .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(
            matches!(err, Error::EditedMigration { version: 1 }),
            "{err}"
        );
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lathe.db");
        let conn = open(&path).unwrap();
        let future = MIGRATIONS.len() as i64 + 1;
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, 'future', 0)",
            [future],
        )
        .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err().to_string();
        assert!(err.contains("newer Lathe"), "{err}");
        assert!(err.contains(&format!("schema version {future}")), "{err}");
    }

    #[test]
    fn an_older_workspace_migrates_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lathe.db");
        // A workspace made by a Lathe that knew only the first migration.
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, sql_hash TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(MIGRATIONS[0]).unwrap();
        tx.execute(
            "INSERT INTO schema_migrations VALUES (1, ?1, 0)",
            [migration_hash(MIGRATIONS[0])],
        )
        .unwrap();
        tx.commit().unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        assert_eq!(applied(&conn).len(), MIGRATIONS.len());
        conn.query_row("SELECT COUNT(*) FROM profiles", [], |r| r.get::<_, i64>(0))
            .unwrap();
    }

    #[test]
    fn an_up_to_date_workspace_opens_while_another_connection_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lathe.db");
        let writer = open(&path).unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let start = std::time::Instant::now();
        let conn = open(&path).unwrap();
        // Without the read-only check, this waited for the busy timeout (10 s).
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(applied(&conn).len(), MIGRATIONS.len());
        writer.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn pragmas_hold() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("lathe.db")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), fk), ("wal", 1));
    }
}
