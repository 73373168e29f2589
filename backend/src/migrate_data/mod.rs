//! `fusebox migrate-data`: a SQLite database's whole history copied into a PostgreSQL one.
//!
//! The target's schema is migrated first (as the server does when it starts). The source is
//! opened read-only and read in one snapshot; it must be at this version's last migration
//! (`fusebox migrate --database <file>` brings an older file there). Every table is copied in
//! dependency order (a table after the tables its foreign keys name), in batches of up to
//! [`BATCH_ROWS`] rows, all in one PostgreSQL transaction: a copy that fails leaves the target
//! as it was. Ids are kept, so every reference stays valid; afterwards each id's sequence
//! continues after the largest id the table has or ever had (SQLite's AUTOINCREMENT counter,
//! which pruning leaves behind), so new rows get fresh ids and the jobs that read by id (the
//! rollups, the alert engine) never skip one. Secrets are copied as stored (hashes of ingest
//! keys and user tokens, channel secrets) and never shown. Aggregates are copied into the
//! partitioned table: into their day's partition where the migrations made one (today's and
//! the next two), else into its default partition, from which the server moves the days raw
//! retention keeps into partitions of their own when it starts (`query::rollup`).
//!
//! The target must be empty (a fresh database, or one only migrated: the rows the migrations
//! seed do not count) unless the caller asks to replace what it holds.

pub mod store;

use anyhow::{Context, bail};

use crate::store::{Store, is_postgres_url, redact};

/// Most rows one `INSERT` carries (fewer for wide tables, to stay under PostgreSQL's 65,535
/// binds per statement).
pub const BATCH_ROWS: usize = 1_000;

/// What to copy where.
#[derive(Clone, Debug)]
pub struct MigrateData {
    /// A SQLite URL (`sqlite://fusebox.db`) or a file's path.
    pub from: String,
    /// A PostgreSQL URL.
    pub to: String,
    /// Delete everything the target holds before copying, instead of refusing.
    pub replace: bool,
}

/// The rows copied into one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
}

/// What a copy did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Per table, in the order they were copied.
    pub tables: Vec<TableCount>,
    /// Per table with a numbered column: the next id it hands out.
    pub next_ids: Vec<(String, i64)>,
    /// Whether the target's earlier rows were deleted (`replace`).
    pub replaced: bool,
}

impl Report {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Copies everything `what.from` holds into `what.to` (see the module's documentation).
pub async fn run(what: &MigrateData) -> anyhow::Result<Report> {
    let from = crate::store::database_url(&what.from);
    if is_postgres_url(&from) {
        bail!(
            "--from must be a SQLite database (a file's path or a sqlite:// URL), not PostgreSQL"
        );
    }
    if !is_postgres_url(&what.to) {
        bail!(
            "--to must be a PostgreSQL URL (postgres://user@host/database), not {:?}",
            what.to
        );
    }
    let source = store::Source::open(&from).await?;
    // Batches a server answered early and stopped before committing are in its journal, not
    // in the file yet.
    if let Some(journal) = crate::ingest::journal::dir_for(&from) {
        let held = crate::ingest::journal::held(&journal)
            .with_context(|| format!("cannot read the ingest journal {}", journal.display()))?;
        if held > 0 {
            bail!(
                "{} holds {held} ingested batches that may not be in the file yet (its server \
                 stopped before committing them): start `fusebox serve` on it once, which \
                 commits them, then copy",
                journal.display()
            );
        }
    }
    let target = Store::open(&what.to)
        .await
        .with_context(|| format!("cannot open and migrate the target {}", redact(&what.to)))?;
    let plan = store::plan(&target).await?;
    store::check_same_tables(&source, &plan).await?;
    store::copy(&source, &target, &plan, what.replace, &redact(&what.to)).await
}

/// A table of the target, with its columns and what it depends on.
#[derive(Clone, Debug)]
pub struct TablePlan {
    pub name: String,
    pub columns: Vec<Column>,
    /// The tables its foreign keys name (itself left out).
    pub depends_on: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// A column numbered by a sequence (an identity, or the partitioned aggregates' id, whose
    /// sequence is its own), which is reset.
    pub numbered: bool,
}

/// The PostgreSQL column types the schema uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    BigInt,
    Double,
    Text,
    Bool,
}

impl Kind {
    /// The kind of an `information_schema.columns.data_type`.
    pub fn of(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "bigint" | "integer" | "smallint" => Kind::BigInt,
            "double precision" | "real" => Kind::Double,
            "text" | "character varying" => Kind::Text,
            "boolean" => Kind::Bool,
            _ => return None,
        })
    }
}

/// `tables` ordered so that each comes after every table it depends on; ties by name, so the
/// order is the same on every run. An error names the tables of a cycle.
pub fn dependency_order(mut tables: Vec<TablePlan>) -> anyhow::Result<Vec<TablePlan>> {
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut done: Vec<TablePlan> = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| {
            t.depends_on
                .iter()
                .all(|d| done.iter().any(|x| &x.name == d) || !tables.iter().any(|x| &x.name == d))
        });
        match ready {
            Some(at) => done.push(tables.remove(at)),
            None => bail!(
                "the foreign keys of {} form a cycle",
                tables
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(done)
}

/// Rows per `INSERT` for a table of `columns` columns.
pub fn batch_rows(columns: usize) -> usize {
    (30_000 / columns.max(1)).clamp(1, BATCH_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, depends_on: &[&str]) -> TablePlan {
        TablePlan {
            name: name.into(),
            columns: vec![],
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn tables_come_after_the_tables_they_reference() {
        let order = dependency_order(vec![
            table("alert_outbox", &["alert_events", "alert_channels"]),
            table("alert_events", &["alerts"]),
            table("transitions", &["breakers"]),
            table("alerts", &[]),
            table("breakers", &[]),
            table("alert_channels", &[]),
        ])
        .unwrap();
        let names: Vec<&str> = order.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "alert_channels",
                "alerts",
                "alert_events",
                "alert_outbox",
                "breakers",
                "transitions"
            ]
        );
        let cycle = dependency_order(vec![table("a", &["b"]), table("b", &["a"])]);
        assert!(cycle.unwrap_err().to_string().contains("a, b"));
    }

    #[test]
    fn a_batch_stays_under_the_bind_limit() {
        assert_eq!(batch_rows(6), BATCH_ROWS);
        assert_eq!(batch_rows(60), 500);
        assert!(batch_rows(100_000) >= 1);
    }
}
