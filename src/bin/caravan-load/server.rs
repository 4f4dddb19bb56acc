//! The system under test: `caravan serve` as a child process on a fresh data directory, so
//! its memory is its own, and the brokers the benchmarks compare it with.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// A directory under the system temp directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> anyhow::Result<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("caravan-load-{}-{what}-{n}", std::process::id()));
        // Owner-only, as Caravan wants its data directory.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed when this handle is dropped (before its directory goes).
pub struct Process {
    child: Child,
    _dir: Option<TempDir>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit: how long it took, or
    /// `None` when it had not exited by then (it is killed when dropped).
    ///
    /// # Errors
    /// `kill` could not be run.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<Option<Duration>> {
        let started = std::time::Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill")?;
        while started.elapsed() < limit {
            if self.child.try_wait()?.is_some() {
                return Ok(Some(started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(None)
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in KiB.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        memory_kib(self.pid())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `VmRSS` and `VmHWM` of `pid` from /proc, in KiB.
///
/// # Errors
/// No such process, or no /proc.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// A running Caravan: where it listens and the token its first start printed.
pub struct Server {
    pub process: Process,
    pub data_dir: PathBuf,
    /// The PostgreSQL database the store is in, when not the data directory's SQLite.
    pub store: Option<String>,
    pub api: String,
    pub mqtt: (String, u16),
    pub token: Option<String>,
}

/// The `caravan` binary next to this one (both come from the same `cargo build`), or the one
/// `CARAVAN_LOAD_BIN` names (another build, to measure against in the same run).
fn caravan_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CARAVAN_LOAD_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()?;
    let path = me.with_file_name("caravan");
    if !path.is_file() {
        bail!(
            "{} is missing: cargo build --release --bin caravan",
            path.display()
        );
    }
    Ok(path)
}

/// Starts `caravan serve` on a new temporary data directory, HTTP and MQTT on free loopback
/// ports, or against `mqtt_url`.
///
/// # Errors
/// The binary is missing or the server did not print its addresses within 30 s.
pub fn start_caravan(mqtt_url: Option<&str>) -> anyhow::Result<Server> {
    start_caravan_in(None, mqtt_url)
}

/// A new temporary directory for a store.
///
/// # Errors
/// It cannot be created.
pub fn temp_dir(what: &str) -> anyhow::Result<TempDir> {
    TempDir::new(what)
}

/// As [`start_caravan`], on the store in `data_dir` when given (left in place afterwards).
///
/// # Errors
/// As [`start_caravan`].
pub fn start_caravan_in(data_dir: Option<&Path>, mqtt_url: Option<&str>) -> anyhow::Result<Server> {
    start_caravan_on(data_dir, None, mqtt_url)
}

/// As [`start_caravan_in`], with the store in the PostgreSQL database `store` when given.
///
/// # Errors
/// As [`start_caravan`].
pub fn start_caravan_on(
    data_dir: Option<&Path>,
    store: Option<&str>,
    mqtt_url: Option<&str>,
) -> anyhow::Result<Server> {
    let dir = match data_dir {
        Some(_) => None,
        None => Some(TempDir::new("caravan")?),
    };
    let data_dir = match (data_dir, &dir) {
        (Some(path), _) => path.to_owned(),
        (None, Some(dir)) => dir.path().to_owned(),
        (None, None) => bail!("no data directory"),
    };
    // A store that has been served before prints no token at the next start: make one.
    let made_token = if data_dir.join("caravan.sqlite").exists() {
        let out = Command::new(caravan_binary()?)
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "token",
                "create",
                "--role",
                "coordinator",
                "--name",
                "caravan-load",
            ])
            .output()
            .context("caravan token create")?;
        if !out.status.success() {
            bail!(
                "caravan token create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        None
    };
    let mut command = Command::new(caravan_binary()?);
    command
        .arg("--data-dir")
        .arg(&data_dir)
        .args(store.map(|url| format!("--store={url}")))
        .args(["serve", "--http", "127.0.0.1:0"])
        .env(
            "RUST_LOG",
            std::env::var("CARAVAN_LOAD_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("CARAVAN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match mqtt_url {
        Some(url) => command.args(["--mqtt-url", url]),
        None => command.args(["--mqtt-listen", "127.0.0.1:0"]),
    };
    let mut child = command.spawn().context("starting caravan serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let process = Process { child, _dir: dir };
    let (mut api, mut mqtt) = (None, None);
    let mut next_line = || -> anyhow::Result<String> {
        match lines.next() {
            Some(line) => Ok(line?),
            None => bail!("caravan serve exited before printing its addresses"),
        }
    };
    // It prints MQTT, then HTTP, then (on a first start) the token on the line after.
    while api.is_none() {
        let line = next_line()?;
        if let Some(rest) = line.strip_prefix("HTTP  ") {
            api = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("MQTT  ") {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            let (host, port) = addr.rsplit_once(':').context("MQTT line without a port")?;
            mqtt = Some((host.to_owned(), port.parse()?));
        }
    }
    let token = if next_line()?.starts_with("First start") {
        Some(next_line()?.trim().to_owned())
    } else {
        made_token
    };
    eprintln!(
        "caravan serve (pid {}): {} mqtt://{}:{}",
        process.pid(),
        api.as_deref().unwrap_or("?"),
        mqtt.as_ref().map_or("?", |m| m.0.as_str()),
        mqtt.as_ref().map_or(0, |m| m.1)
    );
    if let Some(token) = &token {
        // A throwaway server on a temporary directory: its token is only useful for debugging.
        eprintln!("  token for this run: {token}");
    }
    // Keep reading (and dropping) stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let api = api.context("no HTTP line")?;
    let mqtt = mqtt.context("no MQTT line")?;
    Ok(Server {
        process,
        data_dir,
        store: store.map(str::to_owned),
        api,
        mqtt,
        token,
    })
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Mosquitto on a free loopback port with unlimited in-flight and queued messages, so that
/// neither limit silently drops a benchmark's messages.
///
/// # Errors
/// `mosquitto` is not installed or did not start listening within 5 s.
pub fn start_mosquitto(max_inflight: u32) -> anyhow::Result<(Process, u16)> {
    let dir = TempDir::new("mosquitto")?;
    let port = free_port()?;
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages {max_inflight}\nmax_queued_messages 0\nmax_queued_bytes 0\n\
             log_dest none\n"
        ),
    )?;
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto")?;
    let process = Process {
        child,
        _dir: Some(dir),
    };
    wait_listening(port)?;
    Ok((process, port))
}

fn wait_listening(port: u16) -> anyhow::Result<()> {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on 127.0.0.1:{port} after 5 s")
}
