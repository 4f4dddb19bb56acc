//! `caravan serve` as a child process, for the tests that stop or kill it: started on ports
//! chosen beforehand, signalled, waited for, and killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port free when asked, for a server started later.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `caravan serve`, killed when dropped.
pub(crate) struct Server {
    /// What messages call it.
    pub(crate) name: String,
    child: Child,
    /// Its HTTP port.
    pub(crate) http: u16,
    /// Where its stderr goes, if anywhere.
    log: Option<PathBuf>,
}

impl Server {
    /// `caravan serve` with its HTTP on `127.0.0.1:{http}` and its data in `data_dir`; the
    /// caller adds its other arguments and environment.
    pub(crate) fn command(http: u16, data_dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_caravan"));
        command
            .arg("serve")
            .args(["--http", &format!("127.0.0.1:{http}")])
            .arg("--data-dir")
            .arg(data_dir);
        command
    }

    /// Starts `command` (from [`Server::command`] on the same `http`), its stdout discarded
    /// and its stderr written to `log`, or discarded without one.
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        http: u16,
        log: Option<PathBuf>,
    ) -> Server {
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::null(),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("caravan starts");
        Server {
            name: name.to_owned(),
            child,
            http,
            log,
        }
    }

    /// Waits until `/healthz` answers with success; false if it did not within `within`.
    pub(crate) async fn wait_healthy(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let url = format!("http://127.0.0.1:{}/healthz", self.http);
            if let Ok(response) = reqwest::get(url).await {
                if response.status().is_success() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`...) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit; its status. Fails the test if it is still running
    /// after `within` (and kills it, on drop).
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{} did not exit within {within:?}:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// What it has written to its log so far (empty without one).
    pub(crate) fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
