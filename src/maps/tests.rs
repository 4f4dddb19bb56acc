//! Tests over the shipped maps and deliberately broken copies of them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("maps")
}

fn shipped() -> Atlas {
    match Atlas::embedded() {
        Ok(atlas) => atlas,
        Err(error) => panic!("the shipped maps do not load: {error}"),
    }
}

#[test]
fn the_shipped_maps_pass_the_check() {
    let problems = check(&shipped_dir());
    let listing: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{}", listing.join("\n"));
}

#[test]
fn the_embedded_maps_cover_the_region() {
    let atlas = shipped();
    for code in [
        "KZ", "KG", "TJ", "UZ", "TM", "CN", "MN", "RU", "AF", "PK", "IR",
    ] {
        let code = CountryCode::parse(code).expect("a valid code");
        assert!(atlas.country(code).is_some(), "{code} is missing");
    }
    assert!(atlas.bcps.len() >= 20);
    assert!(atlas.offices.len() >= 15);
    assert!(atlas.coverage_gaps.len() >= 5);
    assert!(atlas.bcp("irkeshtam").is_some_and(|b| b.posts.len() == 2));
}

#[test]
fn the_fergana_enclaves_are_part_of_their_country() {
    let atlas = shipped();
    // Sokh, an Uzbek enclave inside Kyrgyzstan.
    let sokh = locate(&atlas, 39.96, 71.13);
    assert_eq!(
        sokh.country.map(|c| c.code.to_string()).as_deref(),
        Some("UZ")
    );
    // Vorukh, a Tajik enclave inside Kyrgyzstan.
    let vorukh = locate(&atlas, 39.85, 70.58);
    assert_eq!(
        vorukh.country.map(|c| c.code.to_string()).as_deref(),
        Some("TJ")
    );
}

#[test]
fn locating_the_irkeshtam_crossing_names_its_post_and_corridor() {
    let atlas = shipped();
    let here = locate(&atlas, 39.68, 73.91);
    assert!(here
        .zones
        .iter()
        .any(|z| z.kind == ZoneKind::BcpPost && z.bcp_id.as_deref() == Some("irkeshtam")));
    let corridor = here.nearest_corridor.clone().expect("a corridor");
    assert_eq!(corridor.id, "c5-kashgar-irkeshtam-osh");
    assert!(corridor.within && corridor.distance_m < 10.0);
    let json = serde_json::to_value(&here).expect("serialisable");
    assert!(json["zones"][0]["id"].is_string());
}

#[test]
fn a_point_in_the_sea_has_no_country_and_a_distant_corridor() {
    let atlas = shipped();
    let here = locate(&atlas, 42.0, 51.0); // the middle of the Caspian Sea
    assert!(here.country.is_none());
    assert!(here.zones.is_empty());
    assert!(here
        .nearest_corridor
        .is_some_and(|c| !c.within && c.distance_m > 100_000.0));
}

/// A copy of the shipped maps in a temporary directory, edited as JSON.
struct BrokenCopy {
    dir: tempfile::TempDir,
}

impl BrokenCopy {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for file in FILES {
            std::fs::copy(shipped_dir().join(file), dir.path().join(file)).expect("copy");
        }
        Self { dir }
    }

    fn edit(&self, file: &str, change: impl FnOnce(&mut Vec<Value>)) {
        let path = self.dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        let mut collection: Value = serde_json::from_str(&text).expect("json");
        let features = collection["features"].as_array_mut().expect("features");
        change(features);
        std::fs::write(&path, collection.to_string()).expect("write");
    }

    fn problems(&self) -> Vec<MapProblem> {
        check(self.dir.path())
    }
}

fn index_of(features: &[Value], id: &str) -> usize {
    features
        .iter()
        .position(|f| f["properties"]["id"] == id)
        .unwrap_or_else(|| panic!("no feature {id}"))
}

fn has(problems: &[MapProblem], file: &str, feature: &str, kind: ProblemKind) -> bool {
    problems
        .iter()
        .any(|p| p.file == file && p.feature.as_deref() == Some(feature) && p.kind == kind)
}

#[test]
fn a_broken_copy_reports_each_problem_by_file_and_feature() {
    let copy = BrokenCopy::new();
    copy.edit("customs-offices.geojson", |features| {
        let again = features[index_of(features, "osh")].clone();
        features.push(again);
    });
    copy.edit("coverage-gaps.geojson", |features| {
        let i = index_of(features, "gap-kulma");
        let ring = features[i]["geometry"]["coordinates"][0]
            .as_array_mut()
            .expect("ring");
        ring.pop();
    });
    copy.edit("border-crossings.geojson", |features| {
        let cn = index_of(features, "irkeshtam-cn");
        let kg = index_of(features, "irkeshtam-kg");
        features[kg]["geometry"] = features[cn]["geometry"].clone();
    });
    copy.edit("corridors.geojson", |features| {
        let i = index_of(features, "c5-kashgar-irkeshtam-osh");
        let joins = features[i]["properties"]["joins"]
            .as_array_mut()
            .expect("joins");
        joins.push(Value::from("torugart"));
    });
    let problems = copy.problems();
    let listing: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let listing = listing.join("\n");

    assert!(
        has(
            &problems,
            "customs-offices.geojson",
            "osh",
            ProblemKind::DuplicateId
        ),
        "{listing}"
    );
    let unclosed = problems
        .iter()
        .find(|p| p.kind == ProblemKind::InvalidGeometry);
    assert!(
        unclosed.is_some_and(|p| p.to_string().starts_with(
            "coverage-gaps.geojson: feature `gap-kulma`: invalid geometry: ring 0 is not closed"
        )),
        "{listing}"
    );
    assert!(
        has(
            &problems,
            "border-crossings.geojson",
            "irkeshtam-kg",
            ProblemKind::WrongSide
        ),
        "{listing}"
    );
    assert!(
        has(
            &problems,
            "corridors.geojson",
            "c5-kashgar-irkeshtam-osh",
            ProblemKind::MissedCheckpoint
        ),
        "{listing}"
    );
    assert_eq!(problems.len(), 4, "{listing}");
}

#[test]
fn a_missing_file_is_reported_and_load_fails_naming_it() {
    let copy = BrokenCopy::new();
    std::fs::remove_file(copy.dir.path().join("corridors.geojson")).expect("remove");
    let problems = copy.problems();
    assert!(problems
        .iter()
        .any(|p| p.file == "corridors.geojson" && p.kind == ProblemKind::Unreadable));
    let error = Atlas::load(copy.dir.path()).expect_err("a missing file");
    assert!(
        error.to_string().starts_with("corridors.geojson"),
        "{error}"
    );
}

#[test]
fn a_post_of_an_unknown_crossing_is_rejected() {
    let copy = BrokenCopy::new();
    copy.edit("border-crossings.geojson", |features| {
        let i = index_of(features, "torugart-kg");
        features[i]["properties"]["bcp_id"] = Value::from("nowhere");
    });
    let problems = copy.problems();
    assert!(has(
        &problems,
        "border-crossings.geojson",
        "torugart-kg",
        ProblemKind::UnknownReference
    ));
    assert!(has(
        &problems,
        "border-crossings.geojson",
        "torugart",
        ProblemKind::IncompletePair
    ));
}

#[test]
fn maps_with_more_zones_than_the_engine_can_name_are_refused() {
    let mut atlas = shipped();
    let zones = atlas.posts().count() + atlas.offices.len() + atlas.coverage_gaps.len();
    let Some(office) = atlas.offices.first().cloned() else {
        panic!("the shipped maps have customs offices");
    };
    atlas
        .offices
        .extend(std::iter::repeat_n(office, MAX_ZONES - zones));
    assert!(
        load::beyond_limits(&atlas).is_empty(),
        "{MAX_ZONES} zones fit"
    );
    let one_more = atlas.offices[0].clone();
    atlas.offices.push(one_more);
    let refused: Vec<String> = load::beyond_limits(&atlas)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("65536 zones"), "{}", refused[0]);
}
