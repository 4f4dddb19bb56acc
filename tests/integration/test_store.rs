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
    /// The test edits stored records behind Caravan's back through the SQLite file, on a
    /// copy of a data directory that is a copy of the store only on SQLite, to check that
    /// `caravan audit verify` names each edit.
    EditsACopiedSqliteFile,
    /// The test stores a value of another type in a column (a text where bytes belong),
    /// which only SQLite's dynamic typing lets anyone do.
    RetypesAColumn,
}

impl SqliteOnly {
    fn reason(self) -> &'static str {
        match self {
            SqliteOnly::EditsACopiedSqliteFile => {
                "it edits a copy of the data directory's SQLite file behind Caravan's back"
            }
            SqliteOnly::RetypesAColumn => {
                "it stores a value of another type in a column, which only SQLite allows"
            }
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

/// The database of each data directory a test used, by the directory.
static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();

/// The store URL for an app on `data_dir`: `None` for SQLite (the file in the directory);
/// on PostgreSQL a database of the directory's own, the same one every time.
pub fn url_for(data_dir: &Path) -> Option<StoreUrl> {
    let admin = admin_url()?;
    let mut databases = DATABASES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = databases
        .entry(data_dir.to_owned())
        .or_insert_with(|| create_database_as(admin, "TEMPLATE template0 ENCODING 'UTF8'"));
    Some(StoreUrl(url.clone()))
}

/// What a `caravan` command run on `data_dir` needs in its environment to find the same
/// store as the test's app: nothing on SQLite (`--data-dir` says it all).
pub fn env_for(data_dir: &Path) -> Vec<(&'static str, String)> {
    url_for(data_dir)
        .map(|url| vec![("CARAVAN__STORE__URL", url.0)])
        .unwrap_or_default()
}

/// Runs `work` with a client of the admin URL on a thread of its own: the blocking client
/// runs a runtime of its own, which panics on a thread inside the test's runtime.
fn on_server<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    let thread = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", caravan::store::masked(&url)));
        work(&mut client)
    });
    match thread.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Creates a database on the admin URL's server, `options` saying what from; returns its
/// URL.
fn create_database_as(admin: &str, options: &str) -> String {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("randomness");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("{DATABASE_PREFIX}{}_{hex}", std::process::id());
    let create = format!("CREATE DATABASE {name} {options}");
    on_server(admin, move |client| {
        // A template is refused while anyone is connected to it: the stopped app's last
        // connections may still be closing.
        for _ in 0..50 {
            match client.batch_execute(&create) {
                Ok(()) => return,
                Err(e) if e.to_string().contains("being accessed by other users") => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("{create}: {e}"),
            }
        }
        panic!("{create}: the template stays in use");
    });
    let mut url = url::Url::parse(admin).expect("the admin URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Drops the databases of earlier runs whose process is gone, so a developer's server does
/// not fill up with them. A database of a running process (another suite) is left alone.
fn drop_leftovers(admin: &str) {
    on_server(admin, drop_finished);
}

fn drop_finished(client: &mut postgres::Client) {
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

/// Another process holding the store's write lock, as a stuck backup or a full disk would
/// stop commits; they go on once it is released (or dropped).
pub struct WriteLock {
    sqlite: Option<rusqlite::Connection>,
    /// On PostgreSQL: the thread holding the lock in an open transaction, and what ends it.
    postgres: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

/// Takes the write lock of the store of `data_dir`: SQLite's `BEGIN EXCLUSIVE` on the file,
/// or on PostgreSQL the tables a commit of reports writes, locked against writers (readers
/// go on, as they do beside SQLite's lock in WAL mode).
pub fn hold_write_lock(data_dir: &Path) -> WriteLock {
    let Some(url) = url_for(data_dir) else {
        let lock = rusqlite::Connection::open(data_dir.join(caravan::store::SQLITE_FILE))
            .expect("the store opens");
        lock.execute_batch("BEGIN EXCLUSIVE").expect("locks");
        return WriteLock {
            sqlite: Some(lock),
            postgres: None,
        };
    };
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, taken) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url.0, postgres::NoTls).expect("connects");
        let mut tx = client.transaction().expect("a transaction");
        tx.batch_execute(
            "LOCK TABLE reports, device_state, devices, event_log, report_batches IN EXCLUSIVE MODE",
        )
        .expect("locks");
        let _ = locked.send(());
        let _ = released.recv();
        let _ = tx.rollback();
    });
    taken.recv().expect("the lock is taken");
    WriteLock {
        sqlite: None,
        postgres: Some((release, thread)),
    }
}

impl WriteLock {
    /// Lets commits go on.
    pub fn release(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(lock) = self.sqlite.take() {
            lock.execute_batch("ROLLBACK").expect("unlocks");
        }
        if let Some((release, thread)) = self.postgres.take() {
            let _ = release.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.end();
    }
}

/// Runs SQL on the store of `data_dir` behind Caravan's back, as someone holding the
/// database would: `sqlite` on the SQLite file, `postgres` on the PostgreSQL database.
pub fn execute(data_dir: &Path, sqlite: &str, postgres: &str) {
    match url_for(data_dir) {
        None => rusqlite::Connection::open(data_dir.join(caravan::store::SQLITE_FILE))
            .expect("the store opens")
            .execute_batch(sqlite)
            .unwrap_or_else(|e| panic!("{sqlite}: {e}")),
        Some(url) => {
            let sql = postgres.to_owned();
            on_server(&url.0, move |client| {
                client
                    .batch_execute(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            });
        }
    }
}

/// The number a `SELECT count(*) ...` query (the same text on both stores) answers on the
/// store of `data_dir`.
pub fn count(data_dir: &Path, query: &str) -> i64 {
    match url_for(data_dir) {
        None => rusqlite::Connection::open(data_dir.join(caravan::store::SQLITE_FILE))
            .expect("the store opens")
            .query_row(query, [], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{query}: {e}")),
        Some(url) => {
            let query = query.to_owned();
            on_server(&url.0, move |client| {
                client
                    .query_one(&query, &[])
                    .unwrap_or_else(|e| panic!("{query}: {e}"))
                    .get(0)
            })
        }
    }
}

/// Makes the store of `to` a copy of the store of `from`, whose app has stopped: on SQLite
/// the copied data directory already holds it; on PostgreSQL a new database is made with
/// `from`'s as its template.
pub fn copy_store(from: &Path, to: &Path) {
    let (Some(admin), Some(source)) = (admin_url(), url_for(from)) else {
        return;
    };
    let source = url::Url::parse(&source.0).expect("a URL");
    let template = source.path().trim_start_matches('/').to_owned();
    let copy = create_database_as(admin, &format!("TEMPLATE {template}"));
    let databases = DATABASES.get_or_init(Mutex::default);
    let mut databases = databases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    databases.insert(to.to_owned(), copy);
}

/// Runs `work` on the PostgreSQL database of `data_dir`; `None` when the suite runs on
/// SQLite.
pub fn with_postgres<T: Send + 'static>(
    data_dir: &Path,
    work: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> Option<T> {
    url_for(data_dir).map(|url| on_server(&url.0, work))
}
