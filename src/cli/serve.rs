use std::path::Path;

use tracing::{info, warn};

use crate::app::App;
use crate::auth::Role;
use crate::settings::Settings;
use crate::simulate::{self, Options};
use crate::tokens;

/// `caravan serve`: runs until SIGINT or SIGTERM, then shuts down cleanly. With `demo`, a
/// small simulated fleet drives on the shipped corridors against this very server.
pub async fn run(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let data_dir = settings.store.data_dir.clone();
    let app = App::start(settings.clone()).await?;
    let broker = if app.embedded_broker {
        "embedded endpoint: devices connect with their credential"
    } else {
        "external broker"
    };
    println!("MQTT  {}:{} ({broker})", app.mqtt.host, app.mqtt.port);
    if let Some(tls) = app.mqtt_tls {
        println!("MQTT  {tls} (TLS)");
    }
    println!("HTTP  http://{}", app.http);
    if let Some(token) = &app.bootstrap_token {
        show_first_token(token, &data_dir);
    }
    if app.http.ip().is_loopback() {
        println!("The API listens on loopback only; put a TLS proxy in front to serve a network.");
    } else {
        println!("WARNING: the API is served without TLS beyond loopback; use a TLS proxy.");
    }
    if demo {
        start_demo(&app, &settings);
    }
    let cancel = app.cancel_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        cancel.cancel();
    });
    let stopped = app.wait().await;
    if demo {
        if let Err(error) = tokens::revoke_named_in(&settings, DEMO_TOKEN) {
            warn!(error = %format!("{error:#}"), "The demo fleet's token was not revoked; the next demo start revokes it.");
        }
    }
    if let Some(fault) = stopped.fault {
        anyhow::bail!("stopped by itself: {fault}");
    }
    if stopped.uncommitted > 0 {
        anyhow::bail!(
            "stopped with {} message batches the store would not take; they were not acknowledged and will be delivered again",
            stopped.uncommitted
        );
    }
    if !stopped.clean {
        anyhow::bail!("some parts did not stop within 5 s");
    }
    Ok(())
}

/// Where the first coordinator token goes when standard output is a journal.
pub const FIRST_TOKEN_FILE: &str = "first-coordinator-token";

/// Prints the first token, except under systemd (which sets `JOURNAL_STREAM` or
/// `INVOCATION_ID`), where standard output is the journal, kept and readable by the `adm`
/// group: there the token goes to an owner-only file in the data directory, and the log
/// says where.
fn show_first_token(token: &str, data_dir: &Path) {
    let under_systemd = ["JOURNAL_STREAM", "INVOCATION_ID"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if under_systemd {
        let path = data_dir.join(FIRST_TOKEN_FILE);
        match crate::store::private::write(&path, &format!("{token}\n")) {
            Ok(()) => {
                println!(
                    "First start: a coordinator token was written to {} (owner-only); read it, then delete the file.",
                    path.display()
                );
                return;
            }
            Err(error) => {
                warn!(error = %error, path = %path.display(), "The first token could not be written to its file; it is printed instead.")
            }
        }
    }
    println!("First start: a coordinator token was created. It is shown only now:");
    println!("    {token}");
    println!("Make more with: caravan token create --role ROLE --name NAME");
}

/// The name of the demo fleet's token in the store.
const DEMO_TOKEN: &str = "demo fleet (caravan serve --demo)";

/// Runs the demo fleet in this process until the app stops.
///
/// The fleet declares transits and closes the completed ones, as customs would, so it needs
/// an officer's token: it mints a coordinator token straight into the store, kept only in
/// memory and never shown. Each start revokes the previous demo token in the same commit,
/// and the token is revoked again when the server stops, so at most one is ever alive (and
/// none after a clean stop). A token through the store rather than a bypass of
/// authentication keeps the demo on the same API path, and in the same event log with its
/// own actor name, as any client.
fn start_demo(app: &App, settings: &Settings) {
    let token = match tokens::replace_in(settings, DEMO_TOKEN, Role::Coordinator) {
        Ok(token) => token,
        Err(error) => {
            warn!(error = %format!("{error:#}"), "No token for the demo fleet; it does not run.");
            return;
        }
    };
    let options = Options::demo(
        app.mqtt.clone(),
        format!("http://{}", app.http),
        Some(token),
    );
    println!(
        "Demo: {} simulated trucks on transits between customs offices (devices demo-00000 ..): the last hour at {}x for {} s, then at the clock's pace.",
        options.vehicles,
        options.speedup,
        simulate::DEMO_LEAD_IN.as_secs()
    );
    let stop = app.cancel_token();
    tokio::spawn(async move {
        match simulate::run(options, stop).await {
            Ok(summary) => info!(
                messages = summary.messages(),
                fixes = summary.fixes(),
                transits_declared = summary.transits.declared,
                transits_closed = summary.transits.closed,
                "The demo fleet stopped."
            ),
            Err(error) => warn!(error = %format!("{error:#}"), "The demo fleet stopped."),
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
