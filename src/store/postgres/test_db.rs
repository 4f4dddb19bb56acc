//! A fresh PostgreSQL database for each test, created from the admin URL in
//! `CARAVAN_TEST_POSTGRES_URL` and dropped when the test ends.
//!
//! Without the variable a test skips (it says so on stderr), except in CI (`CI=true`), where
//! a missing server must fail the run rather than pass it silently.

use postgres::{Client, NoTls};

/// The variable naming the server's admin URL, e.g. `postgres://postgres@127.0.0.1/postgres`.
pub const URL_VAR: &str = "CARAVAN_TEST_POSTGRES_URL";

/// A database of its own for one test; dropped (with its connections) on drop.
pub struct TestDb {
    admin: String,
    name: String,
    /// The URL of this database.
    pub url: String,
}

/// Runs `f` on a thread of its own: the blocking client cannot run inside a tokio runtime,
/// and a test may ask for a database from inside one.
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A new, empty database, or `None` (after saying so) when no server is configured.
///
/// # Panics
/// When the server cannot be reached or the database cannot be created, and when no server
/// is configured under `CI=true`.
pub fn fresh(test: &str) -> Option<TestDb> {
    let Ok(admin) = std::env::var(URL_VAR) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{URL_VAR} is not set: CI must run the PostgreSQL tests"
        );
        eprintln!("skipped {test}: {URL_VAR} is not set");
        return None;
    };
    let name = format!(
        "caravan_test_{}_{:016x}",
        std::process::id(),
        fastrand::u64(..)
    );
    let mut url = url::Url::parse(&admin).expect("CARAVAN_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    let (create_admin, create_name) = (admin.clone(), name.clone());
    off_runtime(move || {
        let mut client = Client::connect(&create_admin, NoTls).expect("the test server");
        client
            .batch_execute(&format!(
                "CREATE DATABASE {create_name} TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .expect("a test database");
    });
    Some(TestDb {
        admin,
        name,
        url: url.to_string(),
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Best effort: a database left behind only takes space on a test server.
        off_runtime(move || {
            if let Ok(mut client) = Client::connect(&admin, NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        });
    }
}
