//! The demo workspace: a churn table, a small image set and a review corpus, generated for Lathe
//! (see assets/demo/generate.py) and built into the binary so a new user has data to look at.

use crate::Result;
use crate::assets::AssetKind;
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = shipped![
    "customers.csv",
    "reviews.txt",
    "shapes/circle/circle-01.png",
    "shapes/circle/circle-02.png",
    "shapes/circle/circle-03.png",
    "shapes/circle/circle-04.png",
    "shapes/circle/circle-05.png",
    "shapes/circle/circle-06.png",
    "shapes/circle/circle-07.png",
    "shapes/circle/circle-08.png",
    "shapes/square/square-01.png",
    "shapes/square/square-02.png",
    "shapes/square/square-03.png",
    "shapes/square/square-04.png",
    "shapes/square/square-05.png",
    "shapes/square/square-06.png",
    "shapes/square/square-07.png",
    "shapes/square/square-08.png",
    "shapes/triangle/triangle-01.png",
    "shapes/triangle/triangle-02.png",
    "shapes/triangle/triangle-03.png",
    "shapes/triangle/triangle-04.png",
    "shapes/triangle/triangle-05.png",
    "shapes/triangle/triangle-06.png",
    "shapes/triangle/triangle-07.png",
    "shapes/triangle/triangle-08.png",
];

/// The demo assets: `(name, kind, path inside the demo folder)`.
pub const ASSETS: [(&str, AssetKind, &str); 3] = [
    ("customers", AssetKind::Table, "customers.csv"),
    ("shapes", AssetKind::Images, "shapes"),
    ("reviews", AssetKind::Text, "reviews.txt"),
];

/// Imports the demo assets into `ws`. Importing them again finds the same versions.
pub fn seed(ws: &mut Workspace) -> Result<()> {
    let staging = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    for (path, bytes) in FILES {
        let dest = staging.path().join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| crate::Error::io(&dest, e))?;
    }
    for (name, kind, path) in ASSETS {
        let request = ImportRequest {
            path: staging.path().join(path),
            name: name.to_owned(),
            kind: Some(kind),
            text_column: None,
            source_label: Some(format!("Lathe demo: {path}")),
        };
        import(ws, &request, &Progress::default())?;
    }
    Ok(())
}
