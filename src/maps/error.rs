//! The one error type of the maps module: every variant names the file, and the feature
//! when there is one.

use std::fmt;

/// Where in the maps a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file name, e.g. `border-crossings.geojson`.
    pub file: String,
    /// The feature's `id` property, or `#index` when it has none.
    pub feature: Option<String>,
}

impl Origin {
    pub fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            feature: None,
        }
    }

    pub fn feature(file: &str, feature: &str) -> Self {
        Self {
            file: file.to_owned(),
            feature: Some(feature.to_owned()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feature {
            Some(feature) => write!(f, "{}: feature `{feature}`", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// A map file that cannot be read, parsed or turned into the atlas.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{origin}: cannot read the file: {source}")]
    Read {
        origin: Origin,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: not a GeoJSON FeatureCollection: {source}")]
    Json {
        origin: Origin,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: property `{property}` {message}")]
    Property {
        origin: Origin,
        property: &'static str,
        message: String,
    },
    #[error("{origin}: invalid geometry: {message}")]
    Geometry { origin: Origin, message: String },
    #[error("{origin}: {message}")]
    Reference { origin: Origin, message: String },
    #[error("{origin}: cannot import a route: {message}")]
    Import { origin: Origin, message: String },
}

impl MapError {
    /// The file and feature the error is about.
    pub fn origin(&self) -> &Origin {
        match self {
            Self::Read { origin, .. }
            | Self::Json { origin, .. }
            | Self::Property { origin, .. }
            | Self::Geometry { origin, .. }
            | Self::Reference { origin, .. }
            | Self::Import { origin, .. } => origin,
        }
    }
}
