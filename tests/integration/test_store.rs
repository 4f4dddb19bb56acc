//! Which store the suite runs on: the embedded SQLite in each app's data directory (the
//! default), or PostgreSQL with `CARAVAN_TEST_STORE=postgres` and `CARAVAN_TEST_POSTGRES_URL`
//! (a URL with the right to create databases). On PostgreSQL every data directory gets a
//! database of its own, made on first use and kept for the process's life, so an app
//! restarted on the same directory, and a CLI command pointed at it, find the same store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use caravan::store::StoreUrl;

const STORE_VAR: &str = "CARAVAN_TEST_STORE";
const ADMIN_URL_VAR: &str = "CARAVAN_TEST_POSTGRES_URL";
/// Databases of this suite are `caravan_test_p{pid}_{random}`: the pid lets a later run drop
/// what a finished run left behind, and nothing else.
const DATABASE_PREFIX: &str = "caravan_test_p";

/// Why a test runs on SQLite only. Each variant is one reason, tests/README.md lists them
/// with their tests, and a test names its reason through [`sqlite_only`].
#[derive(Clone, Copy, Debug)]
pub enum SqliteOnly {
    /// The test edits stored records behind Caravan's back (around the event log's triggers)
    /// through the SQLite file, or copies the data directory as a copy of the store, to
    /// check that `caravan audit verify` or a restart notices.
    EditsTheSqliteFile,
    /// The test checks a property of the SQLite file itself: its permissions, its size, its
    /// write-ahead log.
    ExaminesTheSqliteFile,
}

impl SqliteOnly {
    fn reason(self) -> &'static str {
        match self {
            SqliteOnly::EditsTheSqliteFile => {
                "it edits the store behind Caravan's back through the SQLite file"
            }
            SqliteOnly::ExaminesTheSqliteFile => "it examines the SQLite file itself",
        }
    }
}

/// True (and says why) when the suite runs on PostgreSQL and the test is for SQLite only:
/// the test then returns at once. `if sqlite_only(SqliteOnly::...) { return; }`
#[must_use]
pub fn sqlite_only(why: SqliteOnly) -> bool {
    if on_postgres() {
        eprintln!(
            "This test runs on SQLite only ({}): skipped on PostgreSQL.",
            why.reason()
        );
        return true;
    }
    false
}

/// True when the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    admin_url().is_some()
}

/// The admin URL when the suite runs on PostgreSQL; panics on a store it does not know, or
/// on PostgreSQL without a server to use, so a run never falls back to SQLite unnoticed.
fn admin_url() -> Option<&'static str> {
    static ADMIN: OnceLock<Option<String>> = OnceLock::new();
    ADMIN
        .get_or_init(|| match std::env::var(STORE_VAR).as_deref() {
            Err(_) | Ok("" | "sqlite") => None,
            Ok("postgres") => {
                match std::env::var(ADMIN_URL_VAR) {
                    Ok(url) if !url.is_empty() => {
                        drop_leftovers(&url);
                        Some(url)
                    }
                    _ => {
                        let ci = std::env::var("CI").as_deref() == Ok("true");
                        panic!(
                        "{STORE_VAR}=postgres needs {ADMIN_URL_VAR}=postgres://USER@HOST:PORT/DB, \
                         a user who may create databases{}",
                        if ci { " (CI=true: .ci/run must start PostgreSQL and set it)" } else { "" }
                    )
                    }
                }
            }
            Ok(other) => panic!("{STORE_VAR}={other}: the suite knows sqlite and postgres"),
        })
        .as_deref()
}

/// The store URL for an app on `data_dir`: `None` for SQLite (the file in the directory);
/// on PostgreSQL a database of the directory's own, the same one every time.
pub fn url_for(data_dir: &Path) -> Option<StoreUrl> {
    let admin = admin_url()?;
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut databases = DATABASES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = databases
        .entry(data_dir.to_owned())
        .or_insert_with(|| create_database(admin));
    Some(StoreUrl(url.clone()))
}

/// What a `caravan` command run on `data_dir` needs in its environment to find the same
/// store as the test's app: nothing on SQLite (`--data-dir` says it all).
pub fn env_for(data_dir: &Path) -> Vec<(&'static str, String)> {
    url_for(data_dir)
        .map(|url| vec![("CARAVAN__STORE__URL", url.0)])
        .unwrap_or_default()
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", caravan::store::masked(url)))
}

/// Creates a fresh database on the admin URL's server; returns its URL.
fn create_database(admin: &str) -> String {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("randomness");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{DATABASE_PREFIX}{}_{hex}", std::process::id());
    connect(admin)
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let mut url = url::Url::parse(admin).expect("the admin URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Drops the databases of earlier runs whose process is gone, so a developer's server does
/// not fill up with them. A database of a running process (another suite) is left alone.
fn drop_leftovers(admin: &str) {
    let mut client = connect(admin);
    let names: Vec<String> = client
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&DATABASE_PREFIX],
        )
        .expect("the database list")
        .iter()
        .map(|row| row.get(0))
        .collect();
    for name in names {
        let pid = name[DATABASE_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Another run may be dropping it at the same moment: a failure here is harmless.
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}
