//! `caravan maps ...` as an operator runs it, on the shipped maps and on broken copies.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn shipped_maps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("maps")
}

fn caravan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caravan"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the shipped map files in a temporary directory.
fn copy_of_the_maps() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in caravan::maps::FILES {
        std::fs::copy(shipped_maps().join(file), dir.path().join(file)).unwrap();
    }
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The coordinates `(lat, lon)` of the BCP `id` in the shipped border-crossings file.
fn bcp_location(id: &str) -> (f64, f64) {
    let crossings = read_json(&shipped_maps().join("border-crossings.geojson"));
    let bcp = crossings["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["kind"] == "bcp" && f["properties"]["id"] == id)
        .unwrap_or_else(|| panic!("no BCP {id}"));
    let point = &bcp["geometry"]["coordinates"];
    (point[1].as_f64().unwrap(), point[0].as_f64().unwrap())
}

#[test]
fn maps_check_passes_on_the_shipped_maps_with_a_summary() {
    let output = caravan(&["maps", "check"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for counted in [
        "countries",
        "BCPs",
        "posts",
        "offices",
        "corridors",
        "coverage gaps",
    ] {
        assert!(stdout.contains(counted), "{stdout}");
    }
}

#[test]
fn maps_check_names_the_file_and_feature_of_a_duplicated_id() {
    let dir = copy_of_the_maps();
    let path = dir.path().join("customs-offices.geojson");
    let mut offices = read_json(&path);
    let features = offices["features"].as_array_mut().unwrap();
    let copy = features[0].clone();
    let id = copy["properties"]["id"].as_str().unwrap().to_owned();
    features.push(copy);
    std::fs::write(&path, offices.to_string()).unwrap();

    let output = caravan(&["maps", "check", dir.path().to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let line = format!("customs-offices.geojson: feature `{id}`");
    assert!(stdout.contains(&line), "expected `{line}` in:\n{stdout}");
    assert!(text(&output.stderr).contains("problem"));
}

#[test]
fn maps_locate_at_irkeshtam_gives_the_country_and_the_post_zone() {
    let (lat, lon) = bcp_location("irkeshtam");
    let output = caravan(&[
        "maps",
        "locate",
        "--lat",
        &lat.to_string(),
        "--lon",
        &lon.to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let location: Value = serde_json::from_slice(&output.stdout).unwrap();
    let country = location["country"]["code"].as_str().unwrap();
    assert!(["KG", "CN"].contains(&country), "{location:#}");
    let post = location["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["kind"] == "bcp_post" && z["bcp_id"] == "irkeshtam")
        .unwrap_or_else(|| panic!("no Irkeshtam post zone in {location:#}"));
    assert_eq!(post["country"], country, "the post on the point's side");
    assert_eq!(
        location["nearest_corridor"]["id"],
        "c5-kashgar-irkeshtam-osh"
    );
    assert_eq!(location["nearest_corridor"]["within"], true);
}

#[test]
fn maps_locate_refuses_a_latitude_out_of_range() {
    let output = caravan(&["maps", "locate", "--lat", "123", "--lon", "73.9"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--lat") && stderr.contains("out of range"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn maps_import_route_replaces_the_geometry_only_when_the_route_joins_its_checkpoints() {
    let dir = copy_of_the_maps();
    let maps = dir.path().to_str().unwrap();
    let corridors = dir.path().join("corridors.geojson");
    let before = std::fs::read_to_string(&corridors).unwrap();
    let (irk_lat, irk_lon) = bcp_location("irkeshtam");
    let kashgar = [75.98951, 39.47066];
    let osh = [72.80826, 40.51506];

    let shortcut = dir.path().join("shortcut.geojson");
    let line = serde_json::json!({"type": "LineString", "coordinates": [kashgar, osh]});
    std::fs::write(&shortcut, line.to_string()).unwrap();
    let id = "c5-kashgar-irkeshtam-osh";
    let refused = caravan(&[
        "maps",
        "import-route",
        shortcut.to_str().unwrap(),
        "--corridor",
        id,
        "--maps",
        maps,
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused.stdout).contains("irkeshtam"));
    assert_eq!(std::fs::read_to_string(&corridors).unwrap(), before);

    let surveyed = dir.path().join("surveyed.geojson");
    let route = [kashgar, [74.8, 39.6], [irk_lon, irk_lat], [73.4, 40.3], osh];
    let feature = serde_json::json!({"type": "Feature", "properties": {},
        "geometry": {"type": "LineString", "coordinates": route}});
    std::fs::write(&surveyed, feature.to_string()).unwrap();
    let output = caravan(&[
        "maps",
        "import-route",
        surveyed.to_str().unwrap(),
        "--corridor",
        id,
        "--maps",
        maps,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let after = read_json(&corridors);
    let old = serde_json::from_str::<Value>(&before).unwrap();
    let find = |collection: &Value| {
        collection["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["properties"]["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        find(&after)["geometry"]["coordinates"],
        serde_json::json!(route)
    );
    assert_eq!(find(&after)["properties"], find(&old)["properties"]);
    assert_eq!(
        after["features"].as_array().unwrap().len(),
        old["features"].as_array().unwrap().len()
    );
}
