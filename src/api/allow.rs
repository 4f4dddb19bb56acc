//! The `Allow` header of a 405: the methods the OpenAPI document lists for the path. The
//! document is held to the router by the integration tests, so it is the one table of
//! routes; paths it does not describe (the dashboard's pages) take only GET.

use std::sync::OnceLock;

use serde_json::Value;

/// Each documented path as its segments (`None` for a parameter) and its methods.
type Table = Vec<(Vec<Option<String>>, String)>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let doc: Value = serde_json::from_str(super::openapi::DOCUMENT).unwrap_or(Value::Null);
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Vec::new();
        };
        paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods: Vec<String> = item
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .filter(|k| {
                        ["get", "put", "post", "delete", "patch", "head"].contains(&k.as_str())
                    })
                    .map(|k| k.to_uppercase())
                    .collect();
                (segments, methods.join(", "))
            })
            .collect()
    })
}

/// The methods `path` takes, as an `Allow` value.
pub fn methods(path: &str) -> String {
    let wanted: Vec<&str> = path.split('/').collect();
    table()
        .iter()
        .find(|(segments, _)| {
            segments.len() == wanted.len()
                && segments
                    .iter()
                    .zip(&wanted)
                    .all(|(s, w)| s.as_deref().is_none_or(|s| s == *w))
        })
        .map(|(_, methods)| methods.clone())
        .unwrap_or_else(|| "GET".to_owned())
}

#[cfg(test)]
mod tests {
    use super::methods;

    #[test]
    fn a_documented_path_allows_its_methods_and_a_page_allows_get() {
        assert_eq!(methods("/api/v1/transits"), "GET, POST");
        assert_eq!(methods("/api/v1/transits/t-1/actions"), "POST");
        assert_eq!(methods("/metrics"), "GET");
        assert_eq!(methods("/dashboard/"), "GET");
    }
}
