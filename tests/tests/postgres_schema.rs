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
