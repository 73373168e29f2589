//! The SQL of `fusebox migrate-data`: the target's tables read from PostgreSQL's catalogue,
//! the source read in one SQLite snapshot, the rows written in batches in one transaction.

use std::collections::BTreeSet;
use std::str::FromStr;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool, Postgres, QueryBuilder, Row};

use super::{Column, Kind, Report, TableCount, TablePlan, batch_rows, dependency_order};
use crate::store::{Db, Store, Tx};

/// The SQLite database copied from, opened read-only.
pub struct Source {
    pool: SqlitePool,
    shown: String,
}

impl Source {
    /// Opens the SQLite database at `url` read-only; it must exist and be at this version's
    /// last migration.
    pub async fn open(url: &str) -> anyhow::Result<Source> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL {url:?}"))?
            .read_only(true)
            .create_if_missing(false)
            // Each table is read by one statement that stays open while its rows are written:
            // not a slow statement worth a warning.
            .disable_statement_logging();
        let path = options.get_filename().to_path_buf();
        if !path.is_file() {
            bail!("there is no SQLite file at {}", path.display());
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the SQLite file {}", path.display()))?;
        let shown = path.display().to_string();
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&pool)
        .await
        .with_context(|| format!("{shown} is not a fusebox database (no migrations table)"))?;
        let known: Vec<i64> = crate::store::sqlite_migrator()
            .iter()
            .map(|m| m.version)
            .collect();
        if let Some(newer) = applied.iter().find(|v| !known.contains(v)) {
            bail!(
                "{shown} has migration {newer}, which this fusebox does not know: \
                 copy it with the fusebox version that wrote it"
            );
        }
        if applied.len() < known.len() {
            bail!(
                "{shown} has {} of this fusebox's {} migrations; bring it up to date first with \
                 `fusebox migrate --database {url}` (or by starting the server on it once)",
                applied.len(),
                known.len()
            );
        }
        Ok(Source { pool, shown })
    }
}

/// The target's tables (its migrations applied) in dependency order, with their columns.
pub async fn plan(target: &Store) -> anyhow::Result<Vec<TablePlan>> {
    let pool = postgres(target)?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND table_name::text NOT LIKE '\\_sqlx%'
           AND table_name::text NOT IN (SELECT relname::text FROM pg_class WHERE relispartition)",
    )
    .fetch_all(pool)
    .await?;
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT child.relname::text, parent.relname::text FROM pg_constraint c
         JOIN pg_class child ON child.oid = c.conrelid
         JOIN pg_class parent ON parent.oid = c.confrelid
         WHERE c.contype = 'f'
           AND child.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
    )
    .fetch_all(pool)
    .await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text,
                    (pg_get_serial_sequence(format('%I', table_name), column_name) IS NOT NULL)::text
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1
             ORDER BY ordinal_position",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?;
        let mut columns = Vec::with_capacity(rows.len());
        for (column, data_type, numbered) in rows {
            let Some(kind) = Kind::of(&data_type) else {
                bail!("{name}.{column} has the type {data_type}, which migrate-data cannot copy");
            };
            columns.push(Column {
                name: column,
                kind,
                numbered: numbered == "true",
            });
        }
        let mut depends_on: Vec<String> = keys
            .iter()
            .filter(|(child, parent)| child == &name && parent != &name)
            .map(|(_, parent)| parent.clone())
            .collect();
        depends_on.sort();
        depends_on.dedup();
        tables.push(TablePlan {
            name,
            columns,
            depends_on,
        });
    }
    dependency_order(tables)
}

/// The source must have the target's tables, each with (at least) the target's columns.
pub async fn check_same_tables(source: &Source, plan: &[TablePlan]) -> anyhow::Result<()> {
    let tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sqlx\\_%' ESCAPE '\\'",
    )
    .fetch_all(&source.pool)
    .await?
    .into_iter()
    .collect();
    let wanted: BTreeSet<String> = plan.iter().map(|t| t.name.clone()).collect();
    let missing: Vec<&String> = wanted.difference(&tables).collect();
    let extra: Vec<&String> = tables.difference(&wanted).collect();
    if !missing.is_empty() || !extra.is_empty() {
        bail!(
            "the two schemas differ: missing in {} {missing:?}, missing in PostgreSQL {extra:?}",
            source.shown
        );
    }
    for table in plan {
        let columns: BTreeSet<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(&table.name)
                .fetch_all(&source.pool)
                .await?
                .into_iter()
                .collect();
        if let Some(column) = table.columns.iter().find(|c| !columns.contains(&c.name)) {
            bail!(
                "{} has no column {}.{}",
                source.shown,
                table.name,
                column.name
            );
        }
    }
    Ok(())
}

/// Tables whose migrations seed rows: their rows do not make a target "hold data" (`None`),
/// or only those matching the condition do.
fn seeded(table: &str) -> Option<Option<&'static str>> {
    match table {
        "rollup_progress" | "alert_cursor" => Some(None),
        "alert_rules" => Some(Some("source <> 'default'")),
        _ => None,
    }
}

/// One value on its way from SQLite to PostgreSQL.
enum Value {
    Int(Option<i64>),
    Double(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

/// Copies every table of `plan` from `source` into `target` in one transaction.
pub async fn copy(
    source: &Source,
    target: &Store,
    plan: &[TablePlan],
    replace: bool,
    shown_target: &str,
) -> anyhow::Result<Report> {
    let Tx::Postgres(mut tx) = target.begin().await? else {
        bail!("the target is not PostgreSQL");
    };
    let mut held = Vec::new();
    for table in plan {
        let filter = match seeded(&table.name) {
            Some(None) => continue,
            Some(Some(condition)) => condition,
            None => "TRUE",
        };
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {filter}", quote(&table.name));
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 {
            held.push(format!("{} ({n} rows)", table.name));
        }
    }
    if !held.is_empty() && !replace {
        bail!(
            "the target {shown_target} already holds data: {}. migrate-data copies into an empty \
             database only, so nothing was written. Give an empty database, or pass --replace \
             to delete everything the target holds and copy the SQLite history in its place",
            held.join(", ")
        );
    }
    // The migrations' seeded rows are replaced by the source's own (and with --replace, all).
    let all: Vec<String> = plan.iter().map(|t| quote(&t.name)).collect();
    sqlx::query(AssertSqlSafe(format!("TRUNCATE {}", all.join(", "))))
        .execute(&mut *tx)
        .await?;

    // One read transaction: every table as of the same moment.
    let mut src = source.pool.begin().await?;
    let mut tables = Vec::with_capacity(plan.len());
    for table in plan {
        let rows = copy_table(&mut src, &mut tx, table)
            .await
            .with_context(|| format!("copying the table {}", table.name))?;
        tables.push(TableCount {
            table: table.name.clone(),
            rows,
        });
    }

    // Each sequence continues after the largest id the table has or SQLite ever handed out.
    let has_counters: bool = sqlx::query_scalar(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
    )
    .fetch_one(&mut *src)
    .await?;
    let mut next_ids = Vec::new();
    for table in plan {
        for column in table.columns.iter().filter(|c| c.numbered) {
            let sql = format!(
                "SELECT COALESCE(MAX({}), 0) FROM {}",
                quote(&column.name),
                quote(&table.name)
            );
            let largest: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?;
            let handed_out: Option<i64> = if has_counters {
                sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
                    .bind(&table.name)
                    .fetch_optional(&mut *src)
                    .await?
            } else {
                None
            };
            let next = largest.max(handed_out.unwrap_or(0)) + 1;
            sqlx::query("SELECT setval(pg_get_serial_sequence($1, $2), $3, false)")
                .bind(quote(&table.name))
                .bind(&column.name)
                .bind(next)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("resetting the sequence of {}", table.name))?;
            next_ids.push((table.name.clone(), next));
        }
    }
    src.rollback().await?;
    tx.commit().await.context("cannot commit the copy")?;
    // Fresh planner statistics for the copied tables (autovacuum would gather them too, so
    // a failure here does not undo a committed copy).
    if let Err(err) = sqlx::query("ANALYZE").execute(postgres(target)?).await {
        tracing::warn!("the copy is committed, but ANALYZE failed: {err}");
    }
    Ok(Report {
        tables,
        next_ids,
        replaced: !held.is_empty(),
    })
}

/// Copies one table's rows; how many.
async fn copy_table(
    src: &mut sqlx::SqliteConnection,
    tx: &mut sqlx::PgConnection,
    table: &TablePlan,
) -> anyhow::Result<u64> {
    let select: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            // A REAL column may hold an integer value SQLite kept as one.
            Kind::Double => format!("CAST({0} AS REAL) AS {0}", quote(&c.name)),
            _ => quote(&c.name),
        })
        .collect();
    let names: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let order = if table.columns.iter().any(|c| c.name == "id") {
        " ORDER BY id"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM {}{order}",
        select.join(", "),
        quote(&table.name)
    );
    let insert = format!("INSERT INTO {} ({}) ", quote(&table.name), names.join(", "));
    let per_batch = batch_rows(table.columns.len());
    let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *src);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_batch);
    let mut copied = 0u64;
    loop {
        let row = rows.try_next().await?;
        if let Some(row) = &row {
            batch.push(decode(row, &table.columns)?);
        }
        if !batch.is_empty() && (batch.len() == per_batch || row.is_none()) {
            copied += batch.len() as u64;
            let mut builder = QueryBuilder::<Postgres>::new(insert.clone());
            builder.push_values(batch.drain(..), |mut out, values| {
                for value in values {
                    match value {
                        Value::Int(v) => out.push_bind(v),
                        Value::Double(v) => out.push_bind(v),
                        Value::Text(v) => out.push_bind(v),
                        Value::Bool(v) => out.push_bind(v),
                    };
                }
            });
            builder.build().execute(&mut *tx).await?;
        }
        if row.is_none() {
            return Ok(copied);
        }
    }
}

fn decode(row: &SqliteRow, columns: &[Column]) -> anyhow::Result<Vec<Value>> {
    columns
        .iter()
        .enumerate()
        .map(|(at, column)| {
            let value = match column.kind {
                Kind::BigInt => row.try_get(at).map(Value::Int),
                Kind::Double => row.try_get(at).map(Value::Double),
                Kind::Text => row.try_get(at).map(Value::Text),
                Kind::Bool => row.try_get(at).map(Value::Bool),
            };
            value.with_context(|| format!("reading the column {}", column.name))
        })
        .collect()
}

/// An identifier in double quotes (the names come from PostgreSQL's catalogue).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn postgres(store: &Store) -> anyhow::Result<&PgPool> {
    match store.db() {
        Db::Postgres(pool) => Ok(pool),
        Db::Sqlite(_) => bail!("the target is not PostgreSQL"),
    }
}
