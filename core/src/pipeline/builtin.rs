//! Lathe's built-in components: command components whose specs live in
//! `builtins/catalog.yaml` and whose work is done natively by [`builtins`](super::builtins).
//! A step names one as `component: lathe:<name>` (or `lathe:<name>:<version>`).

use crate::pipeline::PipelineResult;
use std::sync::OnceLock;

use super::component::{self, Component};

const CATALOG: &str = include_str!("builtins/catalog.yaml");

/// The prefix that names a built-in component in a pipeline.
pub const PREFIX: &str = "lathe:";

/// Every built-in component, in catalog order.
pub fn catalog() -> &'static [Component] {
    static PARSED: OnceLock<Vec<Component>> = OnceLock::new();
    PARSED.get_or_init(|| {
        CATALOG
            .split("\n---\n")
            .filter_map(|doc| {
                let with_version = format!("{doc}\nversion: '1'\n");
                component::parse(&with_version).ok()
            })
            .collect()
    })
}

/// The built-in a `lathe:<name>[:<version>]` reference names.
pub fn find(reference: &str) -> PipelineResult<&'static Component> {
    let rest = reference.strip_prefix(PREFIX).unwrap_or(reference);
    let (name, version) = rest.split_once(':').unwrap_or((rest, "1"));
    let found = catalog().iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<&str> = catalog().iter().map(|c| c.name.as_str()).collect();
        format!(
            "'{reference}' is not a built-in component; Lathe has {}",
            names.join(", ")
        )
    })?;
    if version != "1" {
        return Err(format!("built-in '{name}' has only version 1, not '{version}'").into());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_entry_is_a_valid_component() {
        let docs = CATALOG.split("\n---\n").count();
        for doc in CATALOG.split("\n---\n") {
            if let Err(problems) = component::parse(doc) {
                panic!("{problems:?} in\n{doc}");
            }
        }
        assert_eq!(catalog().len(), docs);
        assert!(find("lathe:split_data").is_ok());
        assert!(
            find("lathe:split_data:2")
                .unwrap_err()
                .to_string()
                .contains("only version 1")
        );
        assert!(
            find("lathe:nope")
                .unwrap_err()
                .to_string()
                .contains("Lathe has select_columns")
        );
    }
}
