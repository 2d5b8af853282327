//! The table preview: a virtualized grid over any number of rows. Only the visible rows are laid
//! out; their pages are fetched in the background and a few nearby pages are kept.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use egui_extras::{Column, TableBuilder};
use lathe_core::assets::AssetVersion;
use lathe_core::service::{DataCommand, PAGE_ROWS, Page, Service};

use crate::loadable::Loadable;

/// Pages kept in memory per table; the ones furthest from the view go first.
const KEPT_PAGES: usize = 48;
const ROW_HEIGHT: f32 = 20.0;

#[derive(Default)]
pub struct TablePages {
    pages: HashMap<usize, Loadable<Arc<Page>>>,
    /// What the user typed in "Go to row".
    go_to: String,
}

impl TablePages {
    pub fn insert(&mut self, page: usize, reply: lathe_core::service::Reply<Page>) {
        self.pages.insert(page, Loadable::from_reply(reply));
    }

    fn evict_far_from(&mut self, page: usize) {
        if self.pages.len() <= KEPT_PAGES {
            return;
        }
        let mut keys: Vec<usize> = self.pages.keys().copied().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.abs_diff(page)));
        for key in keys.into_iter().take(self.pages.len() - KEPT_PAGES) {
            self.pages.remove(&key);
        }
    }
}

pub fn table_ui(
    ui: &mut egui::Ui,
    version: &AssetVersion,
    pages: &mut TablePages,
    service: &Service,
) {
    let columns = &version.meta.columns;
    let rows = usize::try_from(version.item_count).unwrap_or(0);
    let mut wanted = BTreeSet::new();
    let mut first_visible = None;
    let row_number_width = (rows.to_string().len() as f32 * 8.0 + 12.0).max(40.0);
    let scroll_to = go_to_row_ui(ui, &mut pages.go_to, rows);
    egui::ScrollArea::horizontal()
        .id_salt(("table-h", version.id))
        .show(ui, |ui| {
            let mut table = TableBuilder::new(ui).id_salt(("table", version.id));
            if let Some(row) = scroll_to {
                table = table.scroll_to_row(row, Some(egui::Align::TOP));
            }
            table
                .striped(true)
                .resizable(true)
                .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                .column(Column::exact(row_number_width))
                .columns(
                    Column::initial(120.0).at_least(40.0).clip(true),
                    columns.len(),
                )
                .min_scrolled_height(0.0)
                .header(ROW_HEIGHT + 4.0, |mut header| {
                    header.col(|ui| {
                        ui.weak("#");
                    });
                    for column in columns {
                        header.col(|ui| {
                            ui.strong(&column.name)
                                .on_hover_text(format!("{} ({})", column.name, column.dtype));
                        });
                    }
                })
                .body(|body| {
                    body.rows(ROW_HEIGHT, rows, |mut row| {
                        let index = row.index();
                        let page = index / PAGE_ROWS;
                        first_visible.get_or_insert(page);
                        row.col(|ui| {
                            ui.weak((index + 1).to_string());
                        });
                        match pages.pages.get(&page) {
                            Some(Loadable::Ready(cells)) => {
                                let cells = cells.get(index % PAGE_ROWS);
                                for c in 0..columns.len() {
                                    row.col(|ui| match cells.and_then(|r| r.get(c)) {
                                        Some(Some(text)) => {
                                            ui.label(text);
                                        }
                                        _ => {
                                            ui.weak("null");
                                        }
                                    });
                                }
                            }
                            Some(Loadable::Failed(e)) => {
                                row.col(|ui| {
                                    ui.colored_label(ui.visuals().error_fg_color, e.as_str());
                                });
                            }
                            Some(Loadable::Loading) => {}
                            None => {
                                wanted.insert(page);
                            }
                        }
                    });
                });
        });
    if let Some(page) = first_visible {
        // Fetch one page ahead so that scrolling down rarely shows an empty row.
        let next = page + 1;
        if next * PAGE_ROWS < rows && !pages.pages.contains_key(&next) {
            wanted.insert(next);
        }
        for page in wanted {
            pages.pages.insert(page, Loadable::Loading);
            service.send(DataCommand::LoadPage {
                version: version.id,
                page,
            });
        }
        pages.evict_far_from(page);
    }
}

/// The "Go to row" field; returns the 0-based row to jump to when the user presses Enter.
fn go_to_row_ui(ui: &mut egui::Ui, text: &mut String, rows: usize) -> Option<usize> {
    ui.horizontal(|ui| {
        let label = ui.label("Go to row");
        let response = ui
            .add(
                egui::TextEdit::singleline(text)
                    .desired_width(90.0)
                    .hint_text(format!("1–{rows}")),
            )
            .labelled_by(label.id);
        let entered = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let row = text
            .trim()
            .replace(',', "")
            .parse::<usize>()
            .ok()
            .filter(|r| (1..=rows).contains(r));
        if !text.trim().is_empty() && row.is_none() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("enter a row number from 1 to {rows}"),
            );
        }
        if entered { row.map(|r| r - 1) } else { None }
    })
    .inner
}
