//! The store in PostgreSQL for a scenario: a database of its own, its rows counted, and the
//! server's CPU, which runs outside Caravan's process and so is not in its figure.
//!
//! The `postgres` client runs its own small runtime, which may not start inside the load
//! tool's; each call here runs on a thread of its own.

use anyhow::Context as _;

fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(work)
        .join()
        .map_err(|_| anyhow::anyhow!("a PostgreSQL call panicked"))?
}

fn connect(url: &str) -> anyhow::Result<postgres::Client> {
    postgres::Client::connect(url, postgres::NoTls).with_context(|| {
        let shown = url::Url::parse(url).map_or_else(
            |_| "an unreadable URL".to_owned(),
            |mut u| {
                let _ = u.set_password(None);
                u.to_string()
            },
        );
        format!("connecting to PostgreSQL at {shown}")
    })
}

/// A new empty database on the server of `admin` (a URL whose user may create databases),
/// named for this run; its URL.
///
/// # Errors
/// The server cannot be reached or refuses.
pub fn fresh_database(admin: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(admin).context("the PostgreSQL URL")?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("caravan_load_{}_{nanos}", std::process::id());
    let admin = admin.to_owned();
    let created = name.clone();
    off_runtime(move || {
        // The name is made here of digits and underscores: nothing to quote.
        connect(&admin)?.batch_execute(&format!("CREATE DATABASE {created}"))?;
        Ok(())
    })?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops the database `store` (a URL [`fresh_database`] gave) through `admin`.
///
/// # Errors
/// The server cannot be reached or refuses.
pub fn drop_database(admin: &str, store: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(store).context("the store's URL")?;
    let name = url.path().trim_start_matches('/').to_owned();
    // Only a name this tool made (digits, letters and underscores) is ever dropped.
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("not a database this tool made: {name}");
    }
    let admin = admin.to_owned();
    off_runtime(move || {
        connect(&admin)?.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        Ok(())
    })
}

/// Reports in the store's `reports` table (a redelivery is kept apart, in
/// `reports_redelivered`, and is not counted).
///
/// # Errors
/// The database cannot be reached or read.
pub fn stored_reports(url: &str) -> anyhow::Result<u64> {
    let url = url.to_owned();
    off_runtime(move || {
        let n: i64 = connect(&url)?
            .query_one("SELECT count(*) FROM reports", &[])?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    })
}

/// CPU seconds (user + system) of every `postgres` process on this machine: the server's
/// share of a run, when the database is local and nothing else uses it.
pub fn server_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(crate::throughput::cpu_seconds)
        .sum()
}
