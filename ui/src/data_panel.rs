//! The Data section: the list of data assets on the left; on the right the selected asset's
//! versions and, for the chosen version, a table preview, profile and comparison with another
//! version (Compare data), an image grid or a text list.

use std::collections::HashMap;
use std::sync::Arc;

use lathe_core::assets::{Asset, AssetKind, AssetVersion, VersionFile};
use lathe_core::format;
use lathe_core::monitoring::compare::Comparison;
use lathe_core::monitoring::thresholds::{Thresholds, evaluate};
use lathe_core::profile::TableProfile;
use lathe_core::service::{DataCommand, DataEvent, MonitorCommand, Reply, Service};

use crate::datastores_view::DatastoresView;
use crate::drift_view;
use crate::image_grid::{Thumbnails, image_grid_ui};
use crate::loadable::{Loadable, loaded_ui, ready_or_status_ui};
use crate::profile_view::profile_ui;
use crate::table_view::{TablePages, table_ui};
use crate::text_list::text_list_ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableTab {
    #[default]
    Preview,
    Profile,
    /// Drift between this version and another of the asset.
    Compare,
}

/// A comparison asked for: `(reference, current)` as `NAME:VERSION`.
type ComparisonKey = (String, String);

#[derive(Default)]
pub struct DataPanel {
    assets: Loadable<Arc<Vec<Asset>>>,
    filter: String,
    selected: Option<String>,
    versions: HashMap<String, Loadable<Arc<Vec<AssetVersion>>>>,
    /// The version id shown for each asset the user looked at.
    chosen: HashMap<String, i64>,
    /// A version asked for by number, chosen once the versions are loaded.
    wanted_number: Option<(String, i64)>,
    tab: TableTab,
    pages: HashMap<i64, TablePages>,
    profiles: HashMap<i64, Loadable<Arc<TableProfile>>>,
    files: HashMap<i64, Loadable<Arc<Vec<VersionFile>>>>,
    texts: HashMap<i64, Loadable<Arc<Vec<String>>>>,
    thumbnails: Thumbnails,
    /// The reference version number chosen per compared version id.
    compare_with: HashMap<i64, i64>,
    comparisons: HashMap<ComparisonKey, Loadable<Arc<Comparison>>>,
    compare_feature: Option<String>,
    pub datastores: DatastoresView,
}

impl DataPanel {
    /// Assets changed elsewhere (an import from the CLI, a pipeline's output, a label export):
    /// the list and the open asset's versions are read again; what is shown stays until the
    /// new lists arrive.
    pub fn assets_changed(&mut self, service: &Service) {
        service.send(DataCommand::LoadAssets);
        if let Some(name) = &self.selected {
            service.send(DataCommand::LoadVersions { name: name.clone() });
        }
    }

    /// Selects an asset and shows its given version (or its latest when `None`).
    pub fn select(&mut self, name: &str, version: Option<i64>) {
        self.datastores.close();
        self.selected = Some(name.to_owned());
        if let Some(id) = version {
            self.chosen.insert(name.to_owned(), id);
        }
        // Read the versions afresh: the next frame asks for them.
        self.versions.remove(name);
    }

    /// Selects an asset and shows the version with this number (a link from lineage).
    pub fn select_number(&mut self, name: &str, number: i64) {
        self.select(name, None);
        self.wanted_number = Some((name.to_owned(), number));
    }

    /// A comparison of two versions arrived (Compare data).
    pub fn on_compared(&mut self, reference: String, current: String, reply: Reply<Comparison>) {
        self.comparisons
            .insert((reference, current), Loadable::from_reply(reply));
    }

    /// Takes the events this panel cares about; hands back the rest.
    pub fn on_event(&mut self, event: DataEvent, ctx: &egui::Context) -> Option<DataEvent> {
        match event {
            DataEvent::Assets(reply) => self.assets = Loadable::from_reply(reply),
            DataEvent::Versions { name, reply } => {
                self.versions.insert(name, Loadable::from_reply(reply));
            }
            DataEvent::Page {
                version,
                page,
                reply,
            } => self.pages.entry(version).or_default().insert(page, reply),
            DataEvent::Profile { version, reply } => {
                self.profiles.insert(version, Loadable::from_reply(reply));
            }
            DataEvent::Files { version, reply } => {
                self.files.insert(version, Loadable::from_reply(reply));
            }
            DataEvent::Text { version, reply } => {
                self.texts.insert(version, Loadable::from_reply(reply));
            }
            DataEvent::Thumbnail { blob_hash, reply } => {
                let state = match reply {
                    Ok(t) => {
                        let image = egui::ColorImage::from_rgba_unmultiplied(
                            [t.width as usize, t.height as usize],
                            &t.rgba,
                        );
                        Loadable::Ready(ctx.load_texture(
                            format!("thumb-{blob_hash}"),
                            image,
                            egui::TextureOptions::LINEAR,
                        ))
                    }
                    Err(e) => Loadable::Failed(e.to_string()),
                };
                self.thumbnails.insert(blob_hash, state);
            }
            other => return Some(other),
        }
        None
    }

    pub fn asset_list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        egui::Panel::bottom("datastore-list")
            .resizable(false)
            .show(ui, |ui| {
                ui.add_space(4.0);
                self.datastores.list_ui(ui, service);
                ui.add_space(4.0);
            });
        ui.add_space(4.0);
        ui.heading("Data assets");
        ui.add(
            egui::TextEdit::singleline(&mut self.filter)
                .hint_text("Filter by name")
                .desired_width(f32::INFINITY),
        );
        ui.add_space(4.0);
        let Some(assets) = ready_or_status_ui(ui, Some(&self.assets), "data assets").cloned()
        else {
            if matches!(self.assets, Loadable::Failed(_)) && ui.button("Retry").clicked() {
                self.assets = Loadable::Loading;
                service.send(DataCommand::LoadAssets);
            }
            return;
        };
        if assets.is_empty() {
            ui.weak("No data assets yet. Drop files or folders on the window, or use Import.");
            return;
        }
        let filter = self.filter.to_lowercase();
        let mut clicked = None;
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for asset in assets
                    .iter()
                    .filter(|a| a.name.to_lowercase().contains(&filter))
                {
                    let selected = !self.datastores.is_open()
                        && self.selected.as_deref() == Some(asset.name.as_str());
                    let response = ui
                        .selectable_label(
                            selected,
                            format!("{} {}", kind_icon(asset.kind), asset.name),
                        )
                        .on_hover_text(format!(
                            "{} · latest version {} · {} version(s)",
                            asset.kind, asset.latest_version, asset.version_count
                        ));
                    if response.clicked() {
                        clicked = Some(asset.name.clone());
                    }
                }
            });
        if let Some(name) = clicked {
            self.select(&name, None);
        }
    }

    /// The main area: the selected datastore, else the selected asset.
    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if self.datastores.is_open() {
            self.datastores.main_ui(ui, service);
        } else {
            self.asset_ui(ui, service);
        }
    }

    pub fn asset_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        let Some(name) = self.selected.clone() else {
            ui.centered_and_justified(|ui| {
                ui.weak("Select a data asset on the left to see its versions, rows and profile.");
            });
            return;
        };
        let Some(versions) = loaded_ui(ui, &mut self.versions, &name, "versions", || {
            service.send(DataCommand::LoadVersions { name: name.clone() });
        }) else {
            return;
        };
        if let Some((wanted, number)) = self.wanted_number.take_if(|(n, _)| *n == name)
            && let Some(v) = versions.iter().find(|v| v.version == number)
        {
            self.chosen.insert(wanted, v.id);
        }
        let chosen = self.chosen.get(&name).copied();
        let Some(version) = versions
            .iter()
            .find(|v| Some(v.id) == chosen)
            .or(versions.first())
            .cloned()
        else {
            return;
        };
        self.header_ui(ui, &name, &versions, &version);
        ui.separator();
        match version.kind {
            AssetKind::Table => self.table_tabs_ui(ui, &version, &versions, service),
            AssetKind::Images => {
                let request = || {
                    service.send(DataCommand::LoadFiles {
                        version: version.id,
                    });
                };
                if let Some(files) = loaded_ui(ui, &mut self.files, &version.id, "images", request)
                {
                    image_grid_ui(ui, &files, &mut self.thumbnails, service);
                }
            }
            AssetKind::Text => {
                let request = || {
                    service.send(DataCommand::LoadText {
                        version: version.id,
                    });
                };
                if let Some(items) =
                    loaded_ui(ui, &mut self.texts, &version.id, "text items", request)
                {
                    text_list_ui(ui, &items);
                }
            }
        }
    }

    fn header_ui(
        &mut self,
        ui: &mut egui::Ui,
        name: &str,
        versions: &[AssetVersion],
        version: &AssetVersion,
    ) {
        ui.horizontal(|ui| {
            let heading = ui.heading(format!("{} {name}", kind_icon(version.kind)));
            ui.weak(version.kind.as_str());
            ui.add_space(12.0);
            let latest = versions.first().map(|v| v.version);
            let label = |v: &AssetVersion| {
                if Some(v.version) == latest {
                    format!("Version {} (latest)", v.version)
                } else {
                    format!("Version {}", v.version)
                }
            };
            egui::ComboBox::from_id_salt("version")
                .selected_text(label(version))
                .show_ui(ui, |ui| {
                    for v in versions {
                        if ui.selectable_label(v.id == version.id, label(v)).clicked() {
                            self.chosen.insert(name.to_owned(), v.id);
                        }
                    }
                })
                .response
                .labelled_by(heading.id);
        });
        let items = match version.kind {
            AssetKind::Table => format!(
                "{} rows × {} columns",
                format::count(version.item_count),
                version.meta.columns.len()
            ),
            AssetKind::Images => format!("{} images", format::count(version.item_count)),
            AssetKind::Text => format!("{} items", format::count(version.item_count)),
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(items);
            ui.weak("·");
            ui.label(format::bytes(version.size_bytes));
            ui.weak("·");
            ui.label(format!(
                "imported {}",
                format::timestamp(version.created_at)
            ));
            ui.weak("·");
            ui.label(
                egui::RichText::new(format!(
                    "hash {}",
                    &version.content_hash[..12.min(version.content_hash.len())]
                ))
                .monospace(),
            )
            .on_hover_text(&version.content_hash);
        });
        ui.add(
            egui::Label::new(egui::RichText::new(format!("from {}", version.source)).weak())
                .truncate(),
        );
    }

    fn table_tabs_ui(
        &mut self,
        ui: &mut egui::Ui,
        version: &AssetVersion,
        versions: &[AssetVersion],
        service: &Service,
    ) {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tab, TableTab::Preview, "Preview");
            ui.selectable_value(&mut self.tab, TableTab::Profile, "Profile");
            ui.selectable_value(&mut self.tab, TableTab::Compare, "Compare data")
                .on_hover_text("Drift and data quality of this version against another one");
        });
        ui.add_space(4.0);
        match self.tab {
            TableTab::Preview => table_ui(
                ui,
                version,
                self.pages.entry(version.id).or_default(),
                service,
            ),
            TableTab::Profile => {
                let request = || {
                    service.send(DataCommand::LoadProfile {
                        version: version.id,
                        reference: version.reference(),
                    });
                };
                if let Some(profile) =
                    loaded_ui(ui, &mut self.profiles, &version.id, "the profile", request)
                {
                    profile_ui(ui, &profile);
                }
            }
            TableTab::Compare => self.compare_ui(ui, version, versions, service),
        }
    }

    /// This version against another of the asset (the one before it, unless chosen): every
    /// column's drift and quality, and one column's distributions.
    fn compare_ui(
        &mut self,
        ui: &mut egui::Ui,
        version: &AssetVersion,
        versions: &[AssetVersion],
        service: &Service,
    ) {
        let others: Vec<&AssetVersion> = versions.iter().filter(|v| v.id != version.id).collect();
        if others.is_empty() {
            ui.weak("This asset has one version: import another to compare them.");
            return;
        }
        let default = others
            .iter()
            .find(|v| v.version < version.version)
            .or(others.first())
            .map_or(0, |v| v.version);
        let reference = *self.compare_with.entry(version.id).or_insert(default);
        ui.horizontal(|ui| {
            let label = ui.label(format!("Version {} against", version.version));
            egui::ComboBox::from_id_salt("compare-with")
                .selected_text(format!("version {reference}"))
                .show_ui(ui, |ui| {
                    for v in &others {
                        if ui
                            .selectable_label(
                                v.version == reference,
                                format!("version {}", v.version),
                            )
                            .clicked()
                        {
                            self.compare_with.insert(version.id, v.version);
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            ui.weak("as the reference");
        });
        let key = (
            format!("{}:{reference}", version.asset_name),
            version.reference(),
        );
        let state = self.comparisons.entry(key.clone()).or_insert_with(|| {
            service.send(MonitorCommand::Compare {
                reference: key.0.clone(),
                current: key.1.clone(),
            });
            Loadable::Loading
        });
        let Some(comparison) = ready_or_status_ui(ui, Some(state), "the comparison").cloned()
        else {
            if matches!(state, Loadable::Failed(_)) && ui.button("Retry").clicked() {
                self.comparisons.remove(&key);
            }
            return;
        };
        let verdict = evaluate(&comparison, &Thresholds::drift_defaults());
        ui.label(format!(
            "{} of {} columns drifted (Azure ML's default thresholds: normalized Wasserstein \
             distance 0.1 for numbers, Jensen-Shannon distance 0.1 for categories)",
            verdict.drifted_features, verdict.features
        ));
        egui::ScrollArea::vertical()
            .id_salt("compare-data")
            .show(ui, |ui| {
                drift_view::feature_table_ui(
                    ui,
                    &comparison,
                    &verdict.crossings,
                    &mut self.compare_feature,
                    "compare-data",
                );
                if let Some(f) = self
                    .compare_feature
                    .as_ref()
                    .and_then(|n| comparison.features.iter().find(|f| &f.name == n))
                {
                    ui.add_space(6.0);
                    drift_view::distribution_ui(ui, f, "compare-data");
                }
            });
    }
}

fn kind_icon(kind: AssetKind) -> &'static str {
    match kind {
        AssetKind::Table => "⊞",
        AssetKind::Images => "🖼",
        AssetKind::Text => "🗋",
    }
}
