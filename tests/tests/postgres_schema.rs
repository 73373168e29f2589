//! The schema in both databases: `migrations/` (SQLite) and `migrations/postgres/` (PostgreSQL)
//! must give the same tables, the same columns in the same order and the same named indexes,
//! so that one query text (or its dialect's twin) reads the same columns on either. The
//! PostgreSQL side runs in a throwaway cluster (`tests::postgres::PgCluster`).

use std::collections::BTreeMap;
use std::path::Path;

use tests::postgres::PgCluster;

/// Per table: its columns in order, and its index names (automatic ones left out).
type Catalogue = BTreeMap<String, (Vec<String>, Vec<String>)>;

fn migrations(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
}

async fn sqlite_catalogue() -> Catalogue {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("schema.db").display());
    let store = backend::store::Store::open(&url).await.unwrap();
    let pool = store.pool();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Catalogue::new();
    for table in tables {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        let mut indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?
               AND name NOT LIKE 'sqlite_autoindex_%'",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        indexes.sort();
        out.insert(table, (columns, indexes));
    }
    out
}

async fn postgres_catalogue(url: &str) -> Catalogue {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::migrate::Migrator::new(migrations("migrations/postgres"))
        .await
        .unwrap()
        .run(&pool)
        .await
        .expect("the PostgreSQL migrations apply");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx_%'
           AND table_name::text NOT IN (SELECT relname::text FROM pg_class WHERE relispartition)
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut out = Catalogue::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await
        .unwrap();
        // Named indexes only: those behind primary keys and unique constraints are the
        // database's own (SQLite's sqlite_autoindex_*), and are compared through the
        // constraints' behaviour by the stores' tests, not by name.
        let mut indexes: Vec<String> = sqlx::query_scalar(
            "SELECT i.indexname::text FROM pg_indexes i
             WHERE i.schemaname = 'public' AND i.tablename = $1
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        )
        .bind(&table)
        .fetch_all(&pool)
        .await
        .unwrap();
        indexes.sort();
        out.insert(table, (columns, indexes));
    }
    pool.close().await;
    out
}

#[tokio::test]
async fn postgres_and_sqlite_migrations_give_the_same_schema() {
    let Some(cluster) = PgCluster::for_test() else {
        return;
    };
    let url = cluster.create_database("fusebox_schema").unwrap();
    let sqlite = sqlite_catalogue().await;
    let postgres = postgres_catalogue(&url).await;
    assert!(sqlite.len() >= 10, "tables in SQLite: {:?}", sqlite.keys());
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, (columns, indexes)) in &sqlite {
        let (pg_columns, pg_indexes) = &postgres[table];
        assert_eq!(columns, pg_columns, "the columns of {table}, in order");
        assert_eq!(indexes, pg_indexes, "the named indexes of {table}");
    }
}

#[test]
fn both_migration_folders_hold_the_same_steps() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(migrations(dir))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("migrations"), names("migrations/postgres"));
}

#[tokio::test]
async fn a_throwaway_cluster_answers_and_is_gone_when_dropped() {
    let Some(cluster) = PgCluster::for_test() else {
        return;
    };
    let url = cluster.url("postgres");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(version.split('.').next().unwrap().parse::<u32>().unwrap() >= 15);
    pool.close().await;
    let pid_file = cluster.data_dir().join("postmaster.pid");
    assert!(pid_file.exists(), "a running server has its pid file");
    let dir = cluster.data_dir().parent().unwrap().to_path_buf();
    drop(cluster);
    // Stopped and removed: its folder is gone.
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

/// Migration 0009 partitions an existing `aggregates` table: every row is kept, in its day's
/// partition (the default one when older than the 60 days it makes partitions of), and new
/// rows' ids continue after the largest id the old table ever handed out, even one pruned.
#[tokio::test]
async fn partitioning_keeps_the_aggregates_and_continues_their_ids() {
    let Some(cluster) = PgCluster::for_test() else {
        return;
    };
    let url = cluster.create_database("fusebox_upgrade").unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // The schema as it was before 0009: the earlier migrations, the same files.
    let before = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(migrations("migrations/postgres")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".sql") && name.as_str() < "0009" {
            std::fs::copy(&path, before.path().join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(before.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let breaker: i64 = sqlx::query_scalar(
        "INSERT INTO breakers (service, name, created_ms) VALUES ('svc', 'db', 0) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    const DAY: i64 = 86_400_000;
    let now = backend::time::now_ms();
    let times = [now, now - 10 * DAY, now - 100 * DAY, now];
    for at in times {
        sqlx::query(
            "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, state, config_version)
             VALUES ($1, 'a', $2, 1000, 1, 0, 0, 0, 0, 0, '1', 'closed', 1)",
        )
        .bind(breaker)
        .bind(at)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Pruning left the sequence ahead of the table.
    sqlx::query("DELETE FROM aggregates WHERE id = 4")
        .execute(&pool)
        .await
        .unwrap();

    // 0009 and whatever follows, as a server applies them when it starts.
    let store = backend::store::Store::open(&url).await.unwrap();
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT id, start_ms, tableoid::regclass::text FROM aggregates ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 2, 3]);
    let days = backend::query::rollup::partitions::day_partitions(&store)
        .await
        .unwrap();
    let today = now.div_euclid(DAY);
    assert_eq!(
        days.iter().map(|p| p.from_ms / DAY).collect::<Vec<_>>(),
        [today - 10, today, today + 1, today + 2],
        "the days of the rows within 60 days, and today and two ahead"
    );
    for (id, at, partition) in &rows[..2] {
        let day = days.iter().find(|p| &p.name == partition);
        assert!(
            day.is_some_and(|p| p.from_ms <= *at && *at < p.to_ms),
            "row {id} at {at} is in {partition}: {days:?}"
        );
    }
    assert_eq!(rows[2].2, "aggregates_default", "older than 60 days");
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
             timeout, rejected, slow, ignored, latency, state, config_version)
         VALUES ($1, 'a', $2, 1000, 1, 0, 0, 0, 0, 0, '1', 'closed', 1) RETURNING id",
    )
    .bind(breaker)
    .bind(now)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(next, 5, "after the pruned 4");
    pool.close().await;
}
