//! The two-instance deployment of deploy/ (compose/ha.yml, systemd/caravan.service.d/ha.conf,
//! systemd/caravan-ha.env.example) read as Caravan would read it: both instances must name
//! the same PostgreSQL store, the same broker and the SAME MQTT client id and account (one
//! persistent session, whichever instance is active), and differ in their data directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What an instance runs with: its `CARAVAN__` variables over deploy/caravan.toml over the
/// defaults, for the keys active/standby depends on.
#[derive(Debug, PartialEq, Eq)]
struct Effective {
    store_url: Option<String>,
    mqtt_url: Option<String>,
    client_id: String,
    username: Option<String>,
}

fn effective(env: &BTreeMap<String, String>) -> Effective {
    let file: toml::Table = read("caravan.toml").parse().expect("caravan.toml parses");
    let defaults = caravan::settings::Settings::default();
    let pick = |var: &str, section: &str, key: &str| -> Option<String> {
        env.get(var).cloned().or_else(|| {
            file.get(section)
                .and_then(|s| s.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
    };
    Effective {
        store_url: pick("CARAVAN__STORE__URL", "store", "url"),
        mqtt_url: pick("CARAVAN__MQTT__URL", "mqtt", "url"),
        client_id: pick("CARAVAN__MQTT__CLIENT_ID", "mqtt", "client_id")
            .unwrap_or(defaults.mqtt.client_id),
        username: pick("CARAVAN__MQTT__USERNAME", "mqtt", "username"),
    }
}

/// The broker gives each client its username as client id, and reserves `caravan-ingest` for
/// Caravan: the configured client id must be that account, or the two instances would not
/// share one session.
fn check_session(instance: &Effective) {
    let mosquitto = read("mosquitto/mosquitto.conf");
    assert!(mosquitto
        .lines()
        .any(|l| l.trim() == "use_username_as_clientid true"));
    assert!(mosquitto.lines().any(|l| l.trim() == "persistence true"));
    assert_eq!(instance.username.as_deref(), Some("caravan-ingest"));
    assert_eq!(instance.client_id, "caravan-ingest");
    assert!(read("mosquitto/acl").contains("user caravan-ingest"));
    let store = instance.store_url.as_deref().unwrap_or_default();
    assert!(store.starts_with("postgres://"), "a shared store: {store}");
    assert!(instance.mqtt_url.is_some(), "an external broker");
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(
        !service.is_badvalue(),
        "compose/ha.yml has no service {name}"
    );
    service
}

fn environment(service: &Yaml) -> BTreeMap<String, String> {
    let Some(map) = service["environment"].as_hash() else {
        panic!("an environment map");
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                other => panic!("{other:?}"),
            };
            (k.as_str().unwrap_or_default().to_owned(), value)
        })
        .collect()
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_pair_shares_the_store_the_broker_and_one_mqtt_session() {
    let docs = YamlLoader::load_from_str(&read("compose/ha.yml")).expect("ha.yml parses");
    let compose = &docs[0];
    let (a, b) = (service(compose, "caravan-a"), service(compose, "caravan-b"));
    let (env_a, env_b) = (environment(a), environment(b));
    let (ea, eb) = (effective(&env_a), effective(&env_b));
    assert_eq!(
        ea, eb,
        "both instances run with the same store, broker and session"
    );
    check_session(&ea);
    let store = ea.store_url.as_deref().unwrap_or_default();
    assert!(
        store.contains("@postgres:5432/"),
        "the compose PostgreSQL: {store}"
    );
    assert!(ea
        .mqtt_url
        .as_deref()
        .is_some_and(|u| u.contains("mosquitto:1883")));
    assert!(!service(compose, "postgres").is_badvalue());
    assert!(!service(compose, "mosquitto").is_badvalue());

    for s in [a, b] {
        assert_eq!(
            s["restart"].as_str(),
            Some("unless-stopped"),
            "a lost lease restarts"
        );
        assert_eq!(
            s["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy")
        );
    }
    // Each keeps its own instance key and checkpoints, and answers on its own port.
    let data = |s: &Yaml| {
        strings(&s["volumes"])
            .into_iter()
            .find(|v| v.ends_with(":/var/lib/caravan"))
            .expect("a data volume")
    };
    assert_ne!(data(a), data(b));
    assert_ne!(strings(&a["ports"]), strings(&b["ports"]));
    assert_eq!(
        env_a.get("CARAVAN__STORE__DATA_DIR"),
        env_b.get("CARAVAN__STORE__DATA_DIR")
    );
}

/// `KEY=VALUE` lines of a systemd unit (sections ignored; repeated keys kept in order).
fn unit_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_hosts_run_the_same_unit_with_the_same_store_and_session() {
    let unit = unit_lines(&read("systemd/caravan.service"));
    let drop_in = unit_lines(&read("systemd/caravan.service.d/ha.conf"));
    let last = |key: &str| {
        unit.iter()
            .chain(drop_in.iter())
            .rfind(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(last("Restart").as_deref(), Some("always"));
    assert_eq!(last("StartLimitIntervalSec").as_deref(), Some("0"));
    assert!(
        last("ExecStart").is_some_and(|e| e.contains("--config /etc/caravan/caravan.toml serve")),
        "the drop-in keeps the unit's command"
    );
    assert!(last("EnvironmentFile").is_some_and(|f| f.ends_with("/etc/caravan/caravan.env")));
    // Nothing that tells the two hosts apart: the drop-in sets no store, broker or session.
    assert!(!drop_in.iter().any(|(k, _)| k == "Environment"));

    // The same environment file on both hosts, read over the unit's own variables.
    let mut env: BTreeMap<String, String> = unit
        .iter()
        .filter(|(k, _)| k == "Environment")
        .filter_map(|(_, v)| v.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (k, v) in unit_lines(&read("systemd/caravan-ha.env.example")) {
        env.insert(k, v);
    }
    check_session(&effective(&env));
}
